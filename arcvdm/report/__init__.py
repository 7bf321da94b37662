"""Views of scores and run folders: rich tables (`tables`), terminal inspection (`inspect`), static HTML (`html`)."""
