"""navtune: fine-tune and evaluate vision-language models as embodied navigation agents."""
__version__ = "0.1.0"
