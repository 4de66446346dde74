"""The service layer: what every protocol adapter asks of the server, in protocol-neutral terms."""
