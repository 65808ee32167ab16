"""The conversation: transcript, messages, Markdown, composer, model picker, the chat controller."""
