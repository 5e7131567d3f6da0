"""The categories of the knowledge base, in browsing order. Light: the TUI reads it at start-up."""

CATEGORIES: tuple[str, ...] = (
    "fundamentals",
    "training",
    "layers",
    "attention",
    "generative",
    "vision",
    "image-processing",
    "metrics",
    "llm",
    "software",
)
