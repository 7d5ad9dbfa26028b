"""Front ends over retrieval: the command line and the Telegram bot."""
