"""The Textual TUI of kb. It talks to kb.service only, and never imports torch."""
