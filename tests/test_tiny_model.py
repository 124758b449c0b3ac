"""The offline tiny Qwen2-VL: real vocabulary ids, the chat template, and a normal checkpoint."""

from medr1.embedded.tiny_model import QWEN2_VL_CHAT_TEMPLATE, SPECIAL_TOKENS


def test_real_qwen2_vocabulary_and_special_token_ids(qwen_vocab_model):
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(qwen_vocab_model).tokenizer
    assert tokenizer("Hello, world!").input_ids == [9707, 11, 1879, 0]  # as the real Qwen2 tokenizer
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL_TOKENS))
    assert ids == list(range(151643, 151657))
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token_id == 151643
    # <think> is an ordinary multi-token string, as for the real model.
    assert len(tokenizer("<think>").input_ids) > 1


def test_checkpoint_reloads_with_auto_classes_and_expands_image_tokens(qwen_vocab_model):
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor, Qwen2VLForConditionalGeneration

    processor = AutoProcessor.from_pretrained(qwen_vocab_model)
    model = AutoModelForImageTextToText.from_pretrained(qwen_vocab_model)
    assert isinstance(model, Qwen2VLForConditionalGeneration)
    assert processor.chat_template == QWEN2_VL_CHAT_TEMPLATE
    conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which organ?"}]}]
    text = processor.apply_chat_template(conversation, add_generation_prompt=True)
    assert text == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                    "<|vision_start|><|image_pad|><|vision_end|>Which organ?<|im_end|>\n<|im_start|>assistant\n")
    inputs = processor(text=[text], images=[Image.new("RGB", (56, 56), "red")], return_tensors="pt")
    # 56x56 -> 4x4 patches of 14 -> 2x2 merge -> 4 visual tokens in the text.
    assert int((inputs.input_ids == 151655).sum()) == 4
    assert inputs.image_grid_thw.tolist() == [[1, 4, 4]]
