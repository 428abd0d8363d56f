"""Schema checks over the model: lint rules (`prism check`) and breaking-change rules (`prism breaking`)."""
