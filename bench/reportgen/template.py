"""The report's words: bench/report/template.md, read into named blocks.

The template is a list of "@@ name" blocks (format described at its top);
Report fills a block's $placeholders with figures computed elsewhere
(reportgen.figures and the section modules) and chooses the words for
met / not met. No figure is computed here."""

import os
import string


def load_template(path):
    """{name: text} from the "@@ name" blocks; @include lines are inlined."""
    blocks, name, lines = {}, None, []
    base = os.path.dirname(path)

    def close():
        if name is not None:
            blocks[name] = "\n".join(lines).strip("\n")

    with open(path) as f:
        for line in f.read().split("\n"):
            if line.startswith("@@ "):
                close()
                name, lines = line[3:].strip(), []
            elif line.startswith("@#"):
                continue
            elif line.startswith("@include "):
                with open(os.path.join(base, line[9:].strip())) as inc:
                    # Kept out of substitution: its "$" are literal.
                    lines.append(inc.read().strip("\n").replace("$", "$$"))
            else:
                lines.append(line)
    close()
    return blocks


class Report:
    def __init__(self, blocks):
        self.blocks = blocks

    def text(self, name, **values):
        return string.Template(self.blocks[name]).substitute(values)

    def rows(self, name, rows):
        return "\n".join(self.text(name, **r) for r in rows)

    def status(self, ok):
        """met / not met / not measured (ok is None)."""
        return self.text("not_measured" if ok is None else "met" if ok else "not_met")
