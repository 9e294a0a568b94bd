#!/usr/bin/env python3
"""Fails when the operator docs and the code disagree about what exists.

Each check compares two lists, both ways, and names every entry found on one side only:

- config keys: config/samokoder.schema.json against the key tables of docs/ops.md (tables whose first
  column is headed `key`; a cell may abbreviate siblings as `.name` after a full key). The schema is in
  turn held to the config parser by tests/unit/config_keys_test.cpp.
- commands: the usage text of the built `samokoder` executable against the command table of docs/ops.md
  and the command-line block of README.md;
- environment variables: every "SAMOKODER_*" string literal in kernel/ and plugins/*/src against
  docs/ops.md;
- metrics: every name the kernel registers (`counter("samokoder_...")`, `gauge(...)`, `histogram(...)`)
  and every plugin metric (`counter_add("name"`, ... which the kernel exports as samokoder_plugin_name)
  against the metric table of docs/ops.md;
- routes: every API path a document names matches a path of kernel/api/openapi.json;
- links: every relative link in README.md, docs/ and the plugins' READMEs points at a file in the
  repository (and at a heading that exists, for links into Markdown), and no document refers to a design
  file outside it.

    scripts/check-docs.py --samokoder build/bin/samokoder
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def read(relative):
    return (ROOT / relative).read_text(encoding="utf-8")


def compare(what, code_side, code_items, doc_side, doc_items):
    """Returns the list of error lines for entries present on one side only."""
    errors = []
    for item in sorted(code_items - doc_items):
        errors.append(f"{what} `{item}` is in {code_side} but not in {doc_side}")
    for item in sorted(doc_items - code_items):
        errors.append(f"{what} `{item}` is in {doc_side} but not in {code_side}")
    return errors


# --- config keys -------------------------------------------------------------------------------------


def schema_keys(schema):
    """Dotted key paths of the schema: `server.listen`, `plugins[].id`, `security.rate_limits.<*>.capacity`."""
    definitions = schema.get("$defs", {})
    keys = set()

    def resolve(node):
        while "$ref" in node:
            node = definitions[node["$ref"].rsplit("/", 1)[1]]
        return node

    def walk(node, prefix):
        node = resolve(node)
        for name, child in node.get("properties", {}).items():
            if name == "$schema":
                continue
            keys.add(prefix + name)
            walk(child, prefix + name + ".")
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            keys.add(prefix + "<*>")
            walk(extra, prefix + "<*>.")
        if "items" in node:
            walk(node["items"], prefix.rstrip(".") + "[].")

    walk(schema, "")
    return keys


def table_rows(markdown, first_header):
    """The first cells of every table whose first column is headed `first_header`."""
    cells = []
    in_table = False
    for line in markdown.splitlines():
        if not line.startswith("|"):
            in_table = False
            continue
        columns = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        if columns and columns[0] == first_header:
            in_table = True
            continue
        if in_table and not set(columns[0]) <= set("-: "):
            cells.append(columns[0])
    return cells


def documented_config_keys(ops):
    keys = set()
    for cell in table_rows(ops, "key"):
        names = re.findall(r"`([^`]+)`", cell)
        base = None
        for name in names:
            if name.startswith(".") and base is not None:
                name = base.rsplit(".", 1)[0] + name
            else:
                base = name
            keys.add(re.sub(r"<[^>]+>", "<*>", name))
    # A documented leaf implies its parents: `log.level` documents the `log` object.
    for key in list(keys):
        parts = key.split(".")
        for i in range(1, len(parts)):
            keys.add(".".join(parts[:i]).removesuffix("[]"))
    return keys


def check_config(ops):
    schema = json.loads(read("config/samokoder.schema.json"))
    in_schema = schema_keys(schema)
    # Objects count as documented through their members; only leaves must have rows of their own.
    documented = documented_config_keys(ops)
    return compare("config key", "config/samokoder.schema.json", in_schema, "docs/ops.md key tables", documented)


# --- commands ----------------------------------------------------------------------------------------


def commands_in(lines, program):
    """`samokoder plugin reload|enable|disable ID` -> {'plugin reload', 'plugin enable', 'plugin disable'}."""
    found = set()
    for line in lines:
        # Command words follow the program name up to the first argument, option or two-space gap.
        line = line.replace("\\|", "|")  # a `|` escaped inside a Markdown table cell
        match = re.search(re.escape(program) + r"((?: [a-z][a-z|-]*(?=[\s`]|$))+)", line)
        if not match:
            continue
        words = match.group(1).split()
        expanded = [""]
        for word in words:
            expanded = [(prefix + " " + alt).strip() for prefix in expanded for alt in word.split("|")]
        found.update(expanded)
    return found


def check_commands(ops, readme, samokoder):
    run = subprocess.run([samokoder, "help"], capture_output=True, text=True, timeout=30)
    usage = (run.stdout + run.stderr).splitlines()
    usage_lines = [line for line in usage if line.strip().startswith("samokoder ")]
    if not usage_lines:
        return [f"`{samokoder} --help` printed no usage lines (exit {run.returncode})"]
    in_binary = commands_in(usage_lines, "samokoder")
    in_ops = commands_in(table_rows(ops, "command"), "samokoder")
    block = re.search(r"## The command line\s+```sh\n(.*?)```", readme, re.S)
    in_readme = commands_in(block.group(1).splitlines() if block else [], "samokoder")
    return compare("command", "`samokoder help`", in_binary, "docs/ops.md command table", in_ops) + compare(
        "command", "`samokoder help`", in_binary, "README.md command-line block", in_readme
    )


# --- environment variables ---------------------------------------------------------------------------


def source_files():
    for folder in ["kernel", "plugins", "sdk"]:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix in {".cpp", ".hpp", ".h"} and "/tests/" not in str(path.relative_to(ROOT)):
                yield path


def check_environment(ops):
    in_code = set()
    for path in source_files():
        in_code.update(re.findall(r'"(SAMOKODER_[A-Z0-9_]+)"', path.read_text(encoding="utf-8")))
    in_docs = set(re.findall(r"`(SAMOKODER_[A-Z0-9_]+)`", ops))
    return compare("environment variable", "the sources", in_code, "docs/ops.md", in_docs)


# --- metrics -----------------------------------------------------------------------------------------


def check_metrics(ops):
    in_code = set()
    for path in source_files():
        text = path.read_text(encoding="utf-8")
        in_code.update(re.findall(r'\b(?:counter|gauge|histogram)\(\s*"(samokoder_[a-z0-9_]+)"', text))
        in_code.update(
            "samokoder_plugin_" + name
            for name in re.findall(r'\b(?:counter_add|gauge_set|histogram_observe)\(\s*"([a-z0-9_]+)"', text)
        )
    in_docs = set()
    for cell in table_rows(ops, "metric"):
        in_docs.update(name for name in re.findall(r"`(samokoder_[a-z0-9_]+)`", cell))
    return compare("metric", "the sources", in_code, "docs/ops.md metric table", in_docs)


# --- routes ------------------------------------------------------------------------------------------


def check_routes():
    """Every API path a document names is served: it matches a path of the OpenAPI document, which
    tests/api_resources/openapi_test.cpp holds to the router."""
    openapi = json.loads(read("kernel/api/openapi.json"))
    patterns = []
    for path in openapi["paths"]:
        parts = path.split("/")
        regex = "/".join(
            (".+" if i == len(parts) - 1 else "[^/]+") if re.fullmatch(r"\{[^}]+\}", part) else re.escape(part)
            for i, part in enumerate(parts)
        )
        patterns.append(re.compile(regex + "/?"))
    errors = []
    for document_path in documents():
        text = document_path.read_text(encoding="utf-8")
        for mention in re.findall(r"(/api/v1/[A-Za-z0-9_{}./-]*[A-Za-z0-9_}]|/healthz|/readyz|/metrics)\b", text):
            # A path prefix of routes (a cookie's Path, say) names them all.
            prefix_of_routes = any(path.startswith(mention + "/") for path in openapi["paths"])
            if not prefix_of_routes and not any(pattern.fullmatch(mention) for pattern in patterns):
                errors.append(f"{document_path.relative_to(ROOT)} names `{mention}`, which no route serves")
    return errors


# --- links -------------------------------------------------------------------------------------------


def slug(heading):
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(markdown):
    found = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


def documents():
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted(ROOT.glob("plugins/*/*/README.md"))]


def check_links():
    errors = []
    for document in documents():
        text = document.read_text(encoding="utf-8")
        name = document.relative_to(ROOT)
        if re.search(r"\.\./shared|\bDESIGN(\.md)?\b", text):
            errors.append(f"{name} refers to a design file outside the repository")
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            resolved = (document.parent / path_part).resolve() if path_part else document
            try:
                resolved.relative_to(ROOT)
            except ValueError:
                errors.append(f"{name}: link `{target}` leaves the repository")
                continue
            if not resolved.exists():
                errors.append(f"{name}: link `{target}` points at a file that does not exist")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text(encoding="utf-8")):
                errors.append(f"{name}: link `{target}` names a heading that does not exist")
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samokoder", required=True, help="the built samokoder executable")
    args = parser.parse_args()
    ops, readme = read("docs/ops.md"), read("README.md")
    errors = (
        check_config(ops)
        + check_commands(ops, readme, args.samokoder)
        + check_environment(ops)
        + check_metrics(ops)
        + check_routes()
        + check_links()
    )
    for error in errors:
        print(error, file=sys.stderr)
    print(f"check-docs: {len(errors)} disagreement(s)", file=sys.stderr if errors else sys.stdout)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
