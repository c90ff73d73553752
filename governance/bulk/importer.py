"""The one import of a bundle file (JSON, YAML, CSV or XLSX), in one transaction.

The core reads the file, runs every registered section (governance.bulk.sections) in
dependency order, and collects every error of the file with its location; the transaction is
rolled back when there is any. `create` refuses anything that already exists; `upsert`
updates what differs and leaves the rest untouched. Nothing is deleted. Sections check the
user's permissions; a file touching anything the user may not change is refused as a whole.
"""

import time
import uuid
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from governance import changelog
from governance.models import ChangeLogEntry

from . import formats
from .formats import FileRejected, error
from .models import KEEP_FOR, ImportErrorPage
from .sections import Run

CREATE, UPSERT = "create", "upsert"
MODES = (CREATE, UPSERT)
TRUE = {"true", "yes", "y", "1", "t"}
FALSE = {"false", "no", "n", "0", "f"}
INVALID = object()
SKIP = object()
READ_ONLY = formats.READ_ONLY_KEYS | {"_loc"}


def error_page_size():
    return formats.limit("BULK_IMPORT_ERROR_PAGE_SIZE")


def errors_url(key, page=1):
    url = f"/api/v1/bulk/imports/{key}/errors"
    return url if page == 1 else f"{url}?page={page}"


class ImportRejected(Exception):
    """The file is refused: 400 with every error, or 403 naming the objects. With more
    errors than a page, keep() stores them all and the answer carries the first page."""

    def __init__(self, detail, errors=(), status=400, objects=()):
        super().__init__(detail)
        if not isinstance(errors, formats.ErrorLog):
            errors = formats.ErrorLog(errors)
        self.detail, self.errors, self.status, self.objects = detail, errors, status, objects
        self.key = None

    def keep(self, user, always=False):
        """Store every error in pages for `user` when there are more than one page holds
        (or always: a job's error text holds only a summary); drop pages past KEEP_FOR."""
        size, count = error_page_size(), len(self.errors)
        if user is None or not count or (count <= size and not always):
            return
        self.key, pages = uuid.uuid4(), -(-count // size)
        errors, batch = iter(self.errors), []
        for number in range(1, pages + 1):  # a few pages in memory at a time
            batch.append(
                ImportErrorPage(
                    key=self.key,
                    number=number,
                    user=user,
                    error_count=count,
                    page_count=pages,
                    errors=list(islice(errors, size)),
                )
            )
            if len(batch) == 20:
                ImportErrorPage.objects.bulk_create(batch)
                batch = []
        ImportErrorPage.objects.bulk_create(batch)
        ImportErrorPage.objects.filter(created_at__lt=timezone.now() - KEEP_FOR).delete()

    def as_dict(self):
        """The answer: the detail, the first page of errors, their count and, when they
        were kept, where they all are (`errors_url`, and `errors_next` for page 2)."""
        size = error_page_size()
        data = {"detail": self.detail, "errors": self.errors.first(size)}
        data["error_count"] = len(self.errors)
        if self.key is not None:
            data["errors_url"] = errors_url(self.key)
            if len(self.errors) > size:
                data["errors_next"] = errors_url(self.key, 2)
        if self.objects:
            data["objects"] = list(self.objects)
        return data


def error_page(user, key, number):
    """Page `number` (text, from a query string) of a refused import's errors as the user
    may see it, or None: a page that is not theirs is the same as one that does not exist."""
    if not str(number).isdigit():
        return None
    return ImportErrorPage.objects.restrict(user).filter(key=key, number=int(number)).first()


def bulk_import(*, data, user, format=None, mode=CREATE, dry_run=False, progress=None):
    """Import a bundle file (bytes, or a binary file read as it is parsed). Returns the
    counts; raises ImportRejected."""
    if mode not in MODES:
        raise ImportRejected(f"unknown mode {mode!r}; choose create or upsert")
    progress = progress or (lambda percent, message: None)
    started = time.monotonic()
    try:
        doc = formats.read(data, format)
    except FileRejected as exc:
        raise ImportRejected(exc.detail, exc.errors) from exc
    del data
    progress(10, f"read {len(doc.tables)} tables and {len(doc.lineage)} edges")
    run = ImportRun(doc, user, mode, dry_run, progress)
    try:
        counts = run.execute()
    except IntegrityError as exc:
        raise ImportRejected(
            "the catalog changed while the file was being imported (another import or a scan "
            "wrote the same objects); nothing was written, import the file again",
            status=409,
        ) from exc
    return {
        "format": doc.format,
        "mode": mode,
        "dry_run": dry_run,
        "counts": counts,
        "errors": [],
        "seconds": round(time.monotonic() - started, 3),
    }


class ImportRun(Run):
    """One import: the document, the errors found so far, the counts, and the value checks
    every section uses."""

    def __init__(self, doc, user, mode, dry_run, progress):
        self.doc, self.mode, self.dry_run, self.progress = doc, mode, dry_run, progress
        self.errors = doc.errors  # the reader's errors, then the sections' ones
        self.denied = []
        self.now = timezone.now()
        self.counts = {}
        super().__init__(user)
        for section in self.sections.values():
            for name in section.counts:
                self.counts[name] = {"created": 0, "updated": 0, "unchanged": 0}

    @property
    def writing(self):
        return not (self.errors or self.dry_run)

    def execute(self):
        sections = list(self.sections.values())
        for section in sections:
            section.plan()
        for section in sections:
            section.check_permissions()
        if self.denied:
            names = sorted(set(self.denied))
            raise ImportRejected(
                f"you may not change {len(names)} object(s) this file touches: "
                + ", ".join(names[:20])
                + (" ..." if len(names) > 20 else ""),
                self.errors,
                status=403,
                objects=names,
            )
        # With errors already found nothing is written, but every row is still checked.
        with transaction.atomic():
            for section in sections:
                section.apply()
            if self.errors:
                raise ImportRejected(f"{len(self.errors)} error(s) in the file", self.errors)
        for section in sections:
            section.finish()
        return self.counts

    # --- values ------------------------------------------------------------------------

    def bad(self, rec, key, message):
        names = rec.get("_names") or {}
        if "_row" in rec:
            self.errors.append(error(rec["_loc"], names.get(key, key), message, rec["_row"]))
        else:
            location = f"{rec['_loc']}/{key}" if key else rec["_loc"]
            self.errors.append(error(location, key, message))
        return INVALID

    def unknown_keys(self, rec, allowed):
        if "_names" in rec:
            return  # flat files: the header was checked
        for key in rec:
            if key not in allowed and key not in READ_ONLY:
                self.bad(rec, key, "unknown key")

    def coerce(self, rec, key, kind, option):
        value = rec[key]
        flat = "_row" in rec
        if kind in ("text", "nulltext"):
            if value is None:
                return None if kind == "nulltext" else ""
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                return self.bad(rec, key, "expected text")
            value = str(value)
            if option and len(value) > option:
                return self.bad(rec, key, f"longer than {option} characters")
            return value
        if flat and value == "":
            if kind == "choice" and "" in option:
                return ""
            return None if kind in ("integer", "number") else SKIP
        if kind == "choice":
            if value is None:
                value = ""
            if value not in option:
                return self.bad(
                    rec, key, f"{value!r} is not one of {', '.join(repr(o) for o in option)}"
                )
            return value
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
                return value.strip().lower() in TRUE
            return self.bad(rec, key, f"{value!r} is not true or false")
        if kind == "integer":
            if value is None:
                return None
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                return self.bad(rec, key, f"{value!r} is not a whole number of 0 or more")
            return value
        if kind == "number":
            if value is None:
                return None
            try:
                number = float(value) if not isinstance(value, bool) else None
            except (TypeError, ValueError):
                number = None
            if number is None or not (0 <= number <= 1):
                return self.bad(rec, key, f"{value!r} is not a number between 0 and 1")
            return number
        raise ValueError(kind)

    def values(self, rec, spec):
        result = {}
        for key, (kind, option) in spec.items():
            if key in rec:
                value = self.coerce(rec, key, kind, option)
                if value is SKIP or (value is None and key == "position"):
                    continue
                result[key] = value
        return result

    # --- writing -----------------------------------------------------------------------

    def update_rows(self, model, updates, related=()):
        """Apply changed values to rows loaded now; (instance, update, before) for the log."""
        loaded = model.objects.select_related(*related).in_bulk([pk for pk, _ in updates])
        names, changes = {"updated_at"}, []
        for pk, changed in updates:
            obj = loaded[pk]
            before = changelog.snapshot(obj)
            for key, value in changed.items():
                setattr(obj, key, value)
            obj.updated_at = self.now
            names.update(changed)
            changes.append((obj, ChangeLogEntry.Action.UPDATE, before))
        model.objects.bulk_update([obj for obj, _, _ in changes], sorted(names), batch_size=1000)
        return changes


def request_limit():
    """The largest upload request: the file's limit plus room for the form's other fields."""
    return formats.max_upload_bytes() + 64 * 1024


def job_threshold():
    return formats.limit("BULK_IMPORT_JOB_THRESHOLD_BYTES")


def bulk_import_submit(*, upload, user, format=None, mode=CREATE, dry_run=False):
    """Import an uploaded file now, or, above the job threshold, as a job run that reads a
    copy kept under VAR_DIR/imports. Returns ("done", result) or ("job", JobRun)."""
    size = upload.size
    if size > formats.max_upload_bytes():
        raise ImportRejected(
            f"the file is {size} bytes; the limit is {formats.max_upload_bytes()} bytes"
        )
    if mode not in MODES:
        raise ImportRejected(f"unknown mode {mode!r}; choose create or upsert")
    if size <= job_threshold():
        try:
            result = bulk_import(data=upload, user=user, format=format, mode=mode, dry_run=dry_run)
        except ImportRejected as exc:
            exc.keep(user)
            raise
        return "done", result
    from governance import jobs
    from governance.tasks import import_bundle

    folder = settings.VAR_DIR / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.upload"
    with open(path, "wb") as handle:
        for block in upload.chunks():
            handle.write(block)
    job = jobs.enqueue(
        import_bundle,
        name="Import catalog" + (" (dry run)" if dry_run else ""),
        user=user,
        path=str(path),
        format=format,
        mode=mode,
        dry_run=dry_run,
    )
    return "job", job


JOB_ERROR_LINES = 20  # in a failed job's error text, after the link to every error


def error_line(item):
    return f"{item['location']}: {item['field'] or '-'}: {item['message']}"


class ImportFailed(Exception):
    """A job's import was refused; the message says where every error is, and the first."""


def bulk_import_file(*, path, user, format=None, mode=CREATE, dry_run=False, progress=None):
    """The job's side: import a stored upload and delete it afterwards."""
    file = Path(path)
    if file.resolve().parent != (Path(settings.VAR_DIR) / "imports").resolve():
        raise ImportFailed(f"{path} is not a stored upload")
    try:
        try:
            with open(file, "rb") as handle:
                return bulk_import(
                    data=handle,
                    user=user,
                    format=format,
                    mode=mode,
                    dry_run=dry_run,
                    progress=progress,
                )
        except ImportRejected as exc:
            exc.keep(user, always=True)
            lines = [exc.detail]
            if exc.key is not None:
                lines.append(f"every error ({len(exc.errors)}): {errors_url(exc.key)}")
            lines += [error_line(e) for e in exc.errors.first(JOB_ERROR_LINES)]
            raise ImportFailed("\n".join(lines)) from None
    finally:
        file.unlink(missing_ok=True)
