"""Operations: managed API keys, temporary tokens."""
