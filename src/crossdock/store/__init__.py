"""Storage: tables, the database handle with its group-commit writer, and migrations."""
