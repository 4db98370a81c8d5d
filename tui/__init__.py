"""The Textual dashboard (`uoom dash`)."""
