"""Data: canonical records -> a prepared DATA_DIR -> model inputs.

`prepare` validates records and images and writes `records.jsonl`, seeded `splits/` and a report;
`splits` holds the splitting rules; `images` decodes and checks images; `prompts` words a question in
each prompt style; `records` reads splits back and builds the `datasets.Dataset` TRL trains on.
Imports only `medr1.sources`.
"""
