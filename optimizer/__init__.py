"""Mining-to-AI capacity allocation optimizer."""

from .instance import Instance

__all__ = ["Instance"]
