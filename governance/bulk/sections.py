"""The registry of bundle sections. The core reads and writes the file; each app registers,
in its AppConfig.ready(), the section it owns and how to check, write and export its
records (catalog: tables, fields, tags, owners, classification decisions; lineage: edges).
The core never imports an app.

A section is a class, instantiated once per import or export run with that run:

    name       unique name ("catalog")
    requires   names of sections that must run before this one
    schema     JSON Schema properties it adds to the document ({"tables": {...}})
    counts     the counters it adds to an import's result, in order

    plan()               import: check the records and look up what exists
    check_permissions()  import: append what the user may not change to run.denied
    apply()              import, in the one transaction: count, and write unless the run is a
                         dry run or has errors
    finish()             import, after the commit
    export()             export: {document key: iterator of records}

A section reaches another (one it requires) through run.section(name).
"""

_registry = {}


class Section:
    name = ""
    requires = ()
    schema = {}
    counts = ()

    def __init__(self, run):
        self.run = run

    def plan(self):
        pass

    def check_permissions(self):
        pass

    def apply(self):
        pass

    def finish(self):
        pass

    def export(self):
        return {}


def register(section):
    """Add (or replace) a section; returns it, so it can be used as a class decorator."""
    if not section.name:
        raise ValueError("a bundle section needs a name")
    _registry[section.name] = section
    return section


def unregister(name):
    _registry.pop(name, None)


def ordered():
    """The registered sections, each after the ones it requires, else in registration order."""
    done, result = set(), []

    def visit(section, path):
        if section.name in done:
            return
        if section.name in path:
            raise ValueError(f"bundle sections require each other: {' -> '.join(path)}")
        for name in section.requires:
            if name not in _registry:
                raise ValueError(f"the bundle section {section.name} requires {name}")
            visit(_registry[name], (*path, section.name))
        done.add(section.name)
        result.append(section)

    for section in list(_registry.values()):
        visit(section, ())
    return result


class Run:
    """What one import or export shares with its sections."""

    def __init__(self, user):
        self.user = user
        self.sections = {}
        for section in ordered():
            self.sections[section.name] = section(self)

    def section(self, name):
        return self.sections[name]
