"""Operator commands: `idsvc models ...` (model packs) and `idsvc faces ...` (compare, evaluate, enrol)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from idsvc.auth.principal import OPERATOR
from idsvc.config import Settings
from idsvc.core.cli import ROW_ID, cli_context, fail, parse, print_json, read_file
from idsvc.core.db import utcnow
from idsvc.core.errors import ApiError
from idsvc.faces import calibrate, filing, packs, service
from idsvc.faces.api import ConsentIn, FilingIn
from idsvc.faces.embed_cache import EmbeddingCache
from idsvc.faces.engine import FaceEngine, cosine
from idsvc.faces.evaluate import embed_folder, pair_scores, read_identities, summarise, write_report
from idsvc.faces.imaging import decode_image
from idsvc.faces.models import ConsentPurpose
from idsvc.faces.openset import CALIBRATION_FILE
from idsvc.faces.policy import load_calibration


def _engine(settings: Settings) -> FaceEngine:
    try:
        return service.engine_for(settings)
    except ApiError as exc:
        fail(exc.message)


def _progress() -> Progress:
    # On stderr, so stdout stays pure JSON for scripts.
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=Console(stderr=True))


def _enrolment_rows(path: Path) -> list[tuple[str, int]]:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [(r["file"].strip(), int(r["person_id"])) for r in csv.DictReader(handle)]
    except OSError as exc:
        fail(f"--csv {path}: cannot read it: {exc.strerror or exc}")
    except (KeyError, AttributeError, ValueError, csv.Error):
        fail(f"--csv {path}: expected a UTF-8 CSV with the columns file,person_id (a number)")


def _finished_rows(path: Path) -> set[str]:
    """The progress file of an earlier run (rows already enrolled), or nothing."""
    try:
        done = json.loads(path.read_text(encoding="utf-8")) if path.exists() else []
    except (OSError, ValueError) as exc:
        fail(f"--state {path}: not a progress file of an earlier run ({exc}); remove it or name another with --state")
    if not isinstance(done, list) or not all(isinstance(x, str) for x in done):
        fail(f"--state {path}: not a progress file of an earlier run; remove it or name another with --state")
    return set(done)


def register(app: typer.Typer) -> None:
    models = typer.Typer(no_args_is_help=True, help="Face model packs (see docs/models.md for licences).")
    faces = typer.Typer(no_args_is_help=True, help="Face comparison, threshold calibration and enrolment.")
    app.add_typer(models, name="models")
    app.add_typer(faces, name="faces")

    @models.command("install")
    def models_install(
        pack: str = typer.Argument(None, help="Pack name from `idsvc models list` (default: the default pack)."),
        source: Path = typer.Option(None, "--from", help="A local zip or folder holding the pack's files."),
        force: bool = typer.Option(False, help="Reinstall even if an intact copy is installed."),
    ) -> None:
        """Install a pack into IDSVC_MODELS_DIR, checking each file's sha256."""
        settings = Settings()
        try:
            installed = packs.install(settings.models_dir, pack, source, force=force)
        except packs.PackError as exc:
            fail(str(exc))
        typer.echo(f"installed {installed.name} in {installed.path}")

    @models.command("list")
    def models_list() -> None:
        """Known packs, whether each is installed, and its licence."""
        settings = Settings()
        print_json({"models_dir": str(settings.models_dir), "configured": settings.face_pack, "packs": packs.list_packs(settings.models_dir)})

    @faces.command("compare")
    def faces_compare(a: Path, b: Path) -> None:
        """Similarity of the best face in each photo, and the verdict at the configured threshold."""
        settings = Settings()
        engine = _engine(settings)
        vectors = []
        for path in (a, b):
            try:
                image = decode_image(read_file(path, "photo"), settings.face_max_pixels)
            except ApiError as exc:
                fail(f"{path}: {exc.message} [{exc.code}]")
            found = engine.detect(image)
            if not found:
                fail(f"{path}: no face found [no_face]")
            vectors.append(engine.embed(image, found[0]))
        similarity = cosine(vectors[0], vectors[1])
        calibration = load_calibration(settings)  # a 1:1 comparison is a door with N = 1
        threshold = settings.face_threshold if calibration is None else calibration.threshold_for(1, settings.face_target_fpir)
        verdict = "same person" if similarity >= threshold else "different people"
        print_json({"similarity": round(similarity, 4), "threshold": threshold, "verdict": verdict, "pack": engine.pack})

    @faces.command("evaluate")
    def faces_evaluate(
        folder: Path = typer.Argument(..., help="Folder of labelled photos."),
        identities: Path = typer.Option(..., help="CSV with columns file,identity."),
        report: Path = typer.Option(None, help="Write roc.png, histogram.png and index.html here."),
    ) -> None:
        """Run the engine over labelled photos: TAR at FAR 1% / 0.1%, EER, errors at the threshold."""
        settings = Settings()
        engine = _engine(settings)
        try:
            labels = read_identities(identities)
        except (OSError, ValueError) as exc:
            fail(f"--identities: {exc}")
        with _progress() as bar:
            task = bar.add_task("embedding", total=len(labels))
            embeddings, names, failures = embed_folder(engine, folder, labels, settings.face_max_pixels, lambda: bar.advance(task))
        if len(embeddings) < 2:
            fail("fewer than two photos with a face; nothing to compare")
        scores = pair_scores(embeddings, names)
        summary = {"pack": engine.pack, "photos": len(labels), "faces_found": len(embeddings), "failures": failures}
        summary |= summarise(scores, settings.face_threshold)
        if report is not None:
            summary["report"] = [str(p) for p in write_report(scores, summary, report)]
        # Open set: the stranger and tenant rates at the thresholds a door with N people would use.
        data = calibrate.embed_labelled(engine, folder, calibrate.read_labelled(identities), settings.face_max_pixels, EmbeddingCache(engine.pack))
        try:
            measured = calibrate.build_calibration(data, engine.pack, {}, target_fpir=settings.face_target_fpir, repeats=20)
            summary["openset"] = {name: g.summary["openset"] for name, g in measured.groups.items()}
        except ValueError as exc:
            summary["openset"] = {"error": str(exc)}
        print_json(summary)

    @faces.command("calibrate")
    def faces_calibrate(
        folder: Path = typer.Argument(..., help="Folder of labelled photos."),
        identities: Path = typer.Option(..., help="CSV with columns file,identity and optionally group (per-group curves; the stricter group governs)."),
        output: Path = typer.Option(None, help="Where to write the calibration (default: calibration.json in the installed pack's folder, which the service then loads)."),
        target_fpir: float = typer.Option(None, help="Stranger rate per attempt the open-set table is computed for (default IDSVC_FACE_TARGET_FPIR)."),
        repeats: int = typer.Option(100, min=5, help="Random gallery/stranger splits per gallery size."),
        exclude: Path = typer.Option(None, help="Photos to leave out (labelled wrongly): one path per line, `# why` after it."),
    ) -> None:
        """Measure impostor/genuine score curves and the open-set stranger rate by gallery size; write a calibration file."""
        settings = Settings()
        engine = _engine(settings)
        target = settings.face_target_fpir if target_fpir is None else target_fpir
        if not 0 < target < 1:
            fail("--target-fpir must be between 0 and 1, e.g. 0.001")
        try:
            labels = calibrate.read_labelled(identities)
            excluded = calibrate.read_exclusions(exclude) if exclude else {}
        except (OSError, ValueError) as exc:
            fail(f"{exclude if exclude and not isinstance(exc, ValueError) else identities}: {exc}")
        unknown = set(excluded) - {p.file for p in labels}
        if unknown:
            fail(f"{exclude} names photos that are not in {identities.name}: {', '.join(sorted(unknown)[:5])}")
        labels = [p for p in labels if p.file not in excluded]
        with _progress() as bar:
            task = bar.add_task("embedding", total=len(labels))
            data = calibrate.embed_labelled(engine, folder, labels, settings.face_max_pixels, EmbeddingCache(engine.pack), lambda: bar.advance(task))
        provenance = {
            "data": str(folder),
            "identities": identities.name,
            "photos": len(labels),
            "faces_found": len(data.photos),
            "excluded": excluded,
            "computed_at": utcnow().isoformat(),
            "command": f"idsvc faces calibrate {folder} --identities {identities} --target-fpir {target:g} --repeats {repeats}"
            + (f" --exclude {exclude}" if exclude else ""),
        }
        try:
            result = calibrate.build_calibration(data, engine.pack, provenance, target_fpir=target, repeats=repeats)
        except ValueError as exc:
            fail(f"cannot calibrate on these photos: {exc}")
        path = output or settings.models_dir / engine.pack / CALIBRATION_FILE
        result.dump(path)
        print_json({
            "written": str(path),
            "fpir_factor": result.fpir_factor,
            "groups": {name: {k: v for k, v in g.summary.items()} for name, g in result.groups.items()},
            "failures": data.failures[:20],
        })

    @faces.command("consent")
    def faces_consent(
        person_id: int = typer.Argument(..., **ROW_ID),
        method: str = typer.Option(..., help='How consent was given, e.g. "signed form".'),
        text_version: str = typer.Option(..., help="Version of the consent text the person was shown, as printed on it."),
        language: str = typer.Option(..., help="Language of that text (BCP 47, e.g. zh-CN)."),
        purpose: ConsentPurpose = typer.Option(ConsentPurpose.face_access.value, help="face_access (needed to enrol) or face_offline (templates in the bridges' feed)."),
    ) -> None:
        """Record a person's separate consent for one purpose (face_access is required before enrolment)."""
        body = parse(ConsentIn, method=method, text_version=text_version, language=language, purpose=purpose)
        with cli_context() as ctx, ctx.db.session() as s:
            consent = service.record_consent(s, OPERATOR, person_id, purpose=body.purpose, method=body.method, text_version=body.text_version, language=body.language)
            print_json({"consent_id": consent.id, "person_id": person_id, "purpose": consent.purpose.value})

    @faces.command("enrol")
    def faces_enrol(person_id: int = typer.Argument(..., **ROW_ID), photos: list[Path] = typer.Argument(..., help="1-5 photos of the person alone.")) -> None:
        """Enrol or re-enrol one person from 1-5 photos (consent must be recorded first)."""
        with cli_context() as ctx, ctx.db.session() as s:
            template = service.enrol(ctx, s, OPERATOR, person_id, [read_file(p, "photo") for p in photos])
            print_json({"person_id": person_id, "pack": template.pack, "quality": template.quality})

    @faces.command("delete")
    def faces_delete(person_id: int = typer.Argument(..., **ROW_ID), withdraw: bool = typer.Option(False, help="Also withdraw the consent.")) -> None:
        """Delete a person's template (with --withdraw: record that consent was withdrawn)."""
        with cli_context() as ctx, ctx.db.session() as s:
            deleted = (service.withdraw_consent if withdraw else service.delete_template)(s, OPERATOR, person_id)
            print_json({"person_id": person_id, "templates_deleted": deleted})

    @faces.command("purge")
    def faces_purge(dry_run: bool = typer.Option(False, "--dry-run", help="List whose templates would go; delete nothing.")) -> None:
        """Delete templates no grant needs any more (after the site's retention.face_template_days, else
        IDSVC_FACE_TEMPLATE_GRACE_DAYS). `idsvc serve` runs it daily (job template_purge)."""
        with cli_context() as ctx, ctx.db.session() as s:
            deleted = service.purge_templates(s, ctx.settings, dry_run=dry_run)
            print_json({"dry_run": dry_run, "templates_deleted_for_people": deleted})

    filing_group = typer.Typer(no_args_is_help=True, help="The filing threshold for 100,000 enrolled people (docs/privacy.md).")
    faces.add_typer(filing_group, name="filing")

    @filing_group.command("status")
    def filing_status() -> None:
        """People enrolled per site and in the deployment; ok, warning, filing_required or filed."""
        with cli_context() as ctx, ctx.db.session() as s:
            print_json(filing.status(s, ctx.settings))

    @filing_group.command("confirm")
    def filing_confirm(reference: str = typer.Option(..., help="The filing's number or receipt from the provincial cyberspace administration.")) -> None:
        """Record that the deployment's face-recognition use was filed; enrolment past the ceiling resumes."""
        body = parse(FilingIn, reference=reference)
        with cli_context() as ctx, ctx.db.session() as s:
            filing.confirm(s, OPERATOR, body.reference)
            print_json(filing.status(s, ctx.settings))

    @faces.command("bulk-enrol")
    def faces_bulk_enrol(
        folder: Path = typer.Argument(..., help="Folder of photos."),
        people: Path = typer.Option(..., "--csv", help="CSV with columns file,person_id."),
        consent_method: str = typer.Option(
            None, help="Record face_access consent with this method for people who have none (only if you hold their signed consent)."
        ),
        consent_text_version: str = typer.Option(None, help="With --consent-method: the version of the consent text they signed."),
        consent_language: str = typer.Option(None, help="With --consent-method: its language (BCP 47, e.g. zh-CN)."),
        errors: Path = typer.Option(None, help="Per-file error report CSV (default: <csv>.errors.csv)."),
        state: Path = typer.Option(None, help="Progress file that makes a rerun skip finished rows (default: <csv>.done.json)."),
    ) -> None:
        """Enrol many people, one transaction per row; rerun after a crash to continue where it stopped."""
        errors = errors or people.with_suffix(".errors.csv")
        state = state or people.with_suffix(".done.json")
        consent = None
        if consent_method is not None:
            if consent_text_version is None or consent_language is None:
                fail("--consent-method needs --consent-text-version and --consent-language: a consent record names the text the person signed")
            consent = parse(ConsentIn, method=consent_method, text_version=consent_text_version, language=consent_language)
        done = _finished_rows(state)
        rows = _enrolment_rows(people)
        failures: list[tuple[str, int, str, str]] = []
        with cli_context() as ctx, _progress() as bar:
            service.engine_for(ctx.settings)  # fail once, up front, if the pack is missing
            task = bar.add_task("enrolling", total=len(rows), completed=sum(1 for f, p in rows if f"{f}:{p}" in done))
            for name, person_id in rows:
                key = f"{name}:{person_id}"
                if key in done:
                    continue
                try:
                    data = (folder / name).read_bytes()
                    with ctx.db.session() as s:
                        if consent is not None and service.active_consent(s, person_id) is None:
                            service.record_consent(
                                s, OPERATOR, person_id, method=consent.method, text_version=consent.text_version, language=consent.language
                            )
                        service.enrol(ctx, s, OPERATOR, person_id, [data])
                    done.add(key)
                    state.write_text(json.dumps(sorted(done)))
                except ApiError as exc:
                    failures.append((name, person_id, exc.code, exc.message))
                except OSError as exc:
                    failures.append((name, person_id, "unreadable", str(exc)))
                bar.advance(task)
        with errors.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "person_id", "code", "message"])
            writer.writerows(failures)
        print_json({"rows": len(rows), "enrolled_total": len(done), "failed": len(failures), "error_report": str(errors)})
        if failures:
            raise typer.Exit(2)
