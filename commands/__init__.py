"""The write side: command models, handlers, the command processor and its ports."""
