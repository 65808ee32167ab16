"""The Markdown column: few widgets for a long reply, heights that follow the text."""

from __future__ import annotations

from ui.chat.markdown import PROSE_CHUNK, merge_prose, render_blocks
from ui.chat.message_widget import CodeBlock, MarkdownView, WrapLabel


def test_a_long_reply_is_a_few_widgets_and_only_the_last_changes_while_streaming(qtbot) -> None:
    text = "\n\n".join(f"Paragraph {i} with some words." for i in range(40))
    blocks = merge_prose(render_blocks(text))
    assert len(blocks) == 40 // PROSE_CHUNK + 1  # chunks, then the paragraph being written
    view = MarkdownView()
    qtbot.addWidget(view)
    view.set_markdown(text)
    first = [w for _, w in view._widgets]  # noqa: SLF001
    view.set_markdown(text + " more")
    again = [w for _, w in view._widgets]  # noqa: SLF001
    assert again == first, "widgets are updated in place"
    assert "more" in again[-1].text() and "more" not in again[0].text()
    # all the text is there, in order, and nothing is repeated
    shown = "".join(w.text() for w in again)
    assert all(shown.count(f"Paragraph {i} ") == 1 for i in range(40))


def test_code_blocks_split_the_prose_and_keep_their_language(qtbot) -> None:
    view = MarkdownView()
    qtbot.addWidget(view)
    view.set_markdown("Intro.\n\n```pyth")
    view.set_markdown("Intro.\n\n```python\nprint(1)\n```\n\nAfter.")
    kinds = [k for k, _ in view._widgets]  # noqa: SLF001
    assert kinds == ["html", "code", "html"]
    code = view._widgets[1][1]  # noqa: SLF001
    assert isinstance(code, CodeBlock) and code.language_label.text() == "python"


def test_wrap_label_height_follows_its_text(qtbot) -> None:
    lab = WrapLabel("")
    lab.setWordWrap(True)
    qtbot.addWidget(lab)
    lab.setText("short")
    one = lab.heightForWidth(200)
    lab.setText("a much longer text " * 20)
    assert lab.heightForWidth(200) > 3 * one
    lab.clear()
    assert lab.heightForWidth(200) <= one
