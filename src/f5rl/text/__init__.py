"""Text: tokenizers and vocab files."""

from f5rl.text.tokenizer import PAD_ID, TOKENIZERS, Tokenizer, build_tokenizer, to_pinyin_tokens
from f5rl.text.vocab import build_char_vocab, extend_vocab, read_vocab, write_vocab

__all__ = [
    "PAD_ID", "TOKENIZERS", "Tokenizer", "build_char_vocab", "build_tokenizer", "extend_vocab",
    "read_vocab", "to_pinyin_tokens", "write_vocab",
]
