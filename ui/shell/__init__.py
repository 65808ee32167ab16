"""The window frame: start-up, main window, sidebar, theme, crash reports, single instance."""
