"""Sources: public raw formats -> canonical records, one module per source.

Takes a release as its authors published it (files, field names, typos and all) and hands on canonical
records (`question_id, dataset, modality, task, question, options, answer, image`) plus the source's
vocabulary (modalities, tasks, option letters). Imports nothing else from medr1.
"""
