"""Runs a notebook of notebooks/ top to bottom, as an analyst would, and fails on any error.

Usage: run_notebook.py NOTEBOOK WORKDIR [NAME=VALUE ...]

The committed notebook must carry no outputs (they are stripped in git). The parameters are
set in a cell inserted after the one tagged `parameters` (papermill's convention), each value a
Python string. Prints JSON: {"cells": N, "outputs": M}.
"""

import json
import sys

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main():
    path, workdir, params = sys.argv[1], sys.argv[2], sys.argv[3:]
    book = nbformat.read(path, as_version=4)
    for cell in book.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path}: outputs are committed"
    tagged = [i for i, c in enumerate(book.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path}: one cell must be tagged `parameters`"
    values = "\n".join(f"{k} = {v!r}" for k, v in (p.split("=", 1) for p in params))
    injected = nbformat.v4.new_code_cell(values)
    injected.metadata["tags"] = ["injected-parameters"]
    book.cells.insert(tagged[0] + 1, injected)
    client = NotebookClient(book, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": workdir}})
    try:
        client.execute()
    except CellExecutionError as e:
        print(str(e), file=sys.stderr)
        sys.exit(1)
    outputs = sum(len(c.get("outputs", [])) for c in book.cells if c.cell_type == "code")
    print(json.dumps({"cells": len(book.cells), "outputs": outputs}))


if __name__ == "__main__":
    main()
