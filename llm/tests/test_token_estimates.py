"""Token estimates are offline, deterministic, and in the right range for accounting."""

from __future__ import annotations

from llm.tokens import estimate_request_tokens, estimate_tokens
from llm.types import ChatMessage, ChatRequest


def test_the_same_text_always_gives_the_same_count():
    text = "The quick brown fox jumps over the lazy dog, twice!"

    assert estimate_tokens(text) == estimate_tokens(text)


def test_empty_text_is_no_tokens():
    assert estimate_tokens("") == 0
    assert estimate_tokens("   \n ") == 0


def test_english_prose_is_about_a_token_per_short_word():
    # BPE tokenizers make this sentence 13 tokens; the estimate stays close.
    assert 11 <= estimate_tokens("The quick brown fox jumps over the lazy dog, twice and again!") <= 18


def test_long_words_and_code_count_more_than_one_token():
    assert estimate_tokens("internationalization") >= 4
    assert estimate_tokens("def f(x): return x**2") >= 9


def test_each_cjk_character_is_a_token():
    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("こんにちは") == 5


def test_a_request_counts_its_messages_system_prompt_and_format_overhead():
    bare = ChatRequest(messages=(ChatMessage(role="user", content="Hello there"),))
    with_system = ChatRequest(messages=bare.messages, system="Be brief.")
    longer = ChatRequest(messages=(*bare.messages, ChatMessage(role="assistant", content="Hi!")))

    assert estimate_request_tokens(bare) > estimate_tokens("Hello there")
    assert estimate_request_tokens(with_system) > estimate_request_tokens(bare)
    assert estimate_request_tokens(longer) > estimate_request_tokens(bare)
