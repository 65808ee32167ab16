"""Full pages beside the chat: Welcome (first run), Hardware, Settings."""
