"""`gate check`: the articles' front matter and links, without building (filled in by the articles issue)."""


def check_docs(root):
    return []
