"""Understanding a message: language, intent (with confidence), dialogue act and entities."""
