"""Chain map YAML (1张图谱): import parsed chains as versions, export them back to YAML, query current versions.

Parsing and validation are in chains/chainmap_parse.py: a file is validated completely before anything is written.
Re-importing content whose normalised checksum equals the current version's is a no-op; changed
content becomes a new current `ChainVersion` (older versions are kept). Link keys are the ids from
the file, so they are stable across versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from chains.chain_models import Chain, ChainLink, ChainVersion, SupplyEdge
from chains.chainmap_parse import LIST_FIELDS, ChainMapError, ParsedChain, parse_chain_file


@dataclass
class ChainImportResult:
    chain_id: str
    version: int
    links: int
    created: bool  # a new version was written
    unchanged: bool  # identical to the current version: nothing written
    source_file: str = ""


def _check_against_db(session: Session, parsed: ParsedChain) -> None:
    """Link ids must be unique across chains: compare with the current version of every other chain."""
    keys = [link.key for link in parsed.links]
    clashes: dict[str, str] = {}
    for start in range(0, len(keys), 500):
        rows = session.execute(
            select(ChainLink.key, Chain.id)
            .join(Chain, ChainLink.version_id == Chain.current_version_id)
            .where(ChainLink.key.in_(keys[start : start + 500]), Chain.id != parsed.id)
        )
        for key, other in rows:
            clashes.setdefault(key, other)
    if clashes:
        lines = {link.key: link.line for link in parsed.links}
        raise ChainMapError(
            [
                (parsed.source_file, lines.get(key), f"环节 id {key} 已被产业链 {other} 使用（环节 id 必须全局唯一）")
                for key, other in sorted(clashes.items())
            ]
        )


def import_parsed_chain(
    session: Session, parsed: ParsedChain, commit: bool = True, provenance: dict[str, Any] | None = None
) -> ChainImportResult:
    """Write a validated chain as a new version unless identical to the current one.

    `provenance` sets the new version's kind, author_id, author and reason (who wrote it and why).
    """
    from chains.chainmap_diff import link_changes

    try:
        _check_against_db(session, parsed)
        checksum = parsed.checksum()
        chain = session.get(Chain, parsed.id)
        if chain is not None and chain.current_version is not None and chain.current_version.checksum == checksum:
            return ChainImportResult(
                parsed.id, chain.current_version.version, len(parsed.links), False, True, parsed.source_file
            )
        previous = list(chain.current_version.links) if chain is not None and chain.current_version else []
        if chain is None:
            chain = Chain(id=parsed.id, name=parsed.name)
            session.add(chain)
        chain.name, chain.sector, chain.description = parsed.name, parsed.sector, parsed.description
        last = session.scalar(select(func.max(ChainVersion.version)).where(ChainVersion.chain_id == parsed.id))
        version = ChainVersion(
            chain_id=parsed.id,
            version=(last or 0) + 1,
            declared_version=parsed.declared_version,
            source_file=parsed.source_file[-512:],
            checksum=checksum,
            name=parsed.name,
            sector=parsed.sector,
            description=parsed.description,
            source=parsed.source,
            **(provenance or {}),
        )
        version.changes = (
            link_changes(
                previous, [{"key": link.key, "parent_key": link.parent_key, "name": link.name} for link in parsed.links]
            )
            if previous
            else None
        )
        version.links = [
            ChainLink(
                key=link.key,
                parent_key=link.parent_key,
                stage=link.stage,
                depth=link.depth,
                position=link.position,
                name=link.name,
                description=link.description,
                keywords=link.keywords,
                synonyms=link.synonyms,
                products=link.products,
                industry_codes=link.industry_codes,
                key_tech=link.key_tech,
                key_tech_note=link.key_tech_note,
            )
            for link in parsed.links
        ]
        version.edges = [SupplyEdge(from_key=s, to_key=d, note=n[:255]) for s, d, n in parsed.edges]
        session.add(version)
        session.flush()
        chain.current_version = version
        session.flush()
        if commit:
            session.commit()
        return ChainImportResult(parsed.id, version.version, len(parsed.links), True, False, parsed.source_file)
    except Exception:
        session.rollback()
        raise


def import_chain_file(session: Session, path: str | Path, commit: bool = True) -> ChainImportResult:
    """Parse, validate and import one chain file; raise ChainMapError (nothing written) on any problem."""
    return import_parsed_chain(session, parse_chain_file(path), commit=commit)


def chain_files(path: str | Path) -> list[Path]:
    """The YAML files to import: `path` itself or the *.yaml/*.yml files of a folder, sorted."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def import_chain_path(
    session: Session, path: str | Path
) -> tuple[list[ChainImportResult], list[tuple[str, int | None, str]]]:
    """Import a file or every file of a folder, each file in its own transaction.

    Returns the results of the files that imported and the errors of those rejected.
    """
    if not Path(path).exists():
        return [], [(str(path), None, "路径不存在")]
    results, errors = [], []
    for file in chain_files(path):
        try:
            results.append(import_chain_file(session, file))
        except ChainMapError as exc:
            errors.extend(exc.errors)
    return results, errors


# ----------------------------------------------------------------------------- export


def version_to_dict(version: ChainVersion) -> dict[str, Any]:
    """A chain version as the YAML document structure (children nested, empty fields omitted)."""
    nodes: dict[str, dict[str, Any]] = {}
    top: list[dict[str, Any]] = []
    for link in sorted(version.links, key=lambda link: link.position):
        node: dict[str, Any] = {"id": link.key, "name": link.name, "stage": link.stage}
        if link.description:
            node["description"] = link.description
        for f in LIST_FIELDS:
            if getattr(link, f):
                node[f] = list(getattr(link, f))
        if link.key_tech:
            node["key_tech"] = True
        if link.key_tech_note:
            node["key_tech_note"] = link.key_tech_note
        nodes[link.key] = node
        if link.parent_key and link.parent_key in nodes:
            nodes[link.parent_key].setdefault("children", []).append(node)
        else:
            top.append(node)
    doc: dict[str, Any] = {
        "id": version.chain_id,
        "name": version.name or version.chain.name,
        "sector": version.sector,
        "version": version.declared_version,
        "description": version.description,
        "source": version.source,
        "links": top,
    }
    edges = sorted(version.edges, key=lambda e: (e.from_key, e.to_key))
    if edges:
        doc["supply"] = [{"from": e.from_key, "to": e.to_key, **({"note": e.note} if e.note else {})} for e in edges]
    return doc


def export_chain_yaml(session: Session, chain_id: str, version_number: int | None = None) -> str:
    """YAML text of a chain's current (or given) version; re-imports to the same content."""
    chain = session.get(Chain, chain_id)
    if chain is None:
        raise KeyError(chain_id)
    if version_number is None:
        version = chain.current_version
    else:
        version = session.scalar(
            select(ChainVersion).where(ChainVersion.chain_id == chain_id, ChainVersion.version == version_number)
        )
    if version is None:
        raise KeyError(f"{chain_id} v{version_number}")
    return yaml.safe_dump(version_to_dict(version), allow_unicode=True, sort_keys=False, width=100)


# ----------------------------------------------------------------------------- queries


def current_links(session: Session, chain_id: str) -> list[ChainLink]:
    """Links of a chain's current version in file order (empty when the chain is unknown)."""
    chain = session.get(Chain, chain_id)
    if chain is None or chain.current_version_id is None:
        return []
    return list(
        session.scalars(
            select(ChainLink).where(ChainLink.version_id == chain.current_version_id).order_by(ChainLink.position)
        )
    )


def chain_summaries(session: Session) -> list[dict[str, Any]]:
    """id, name, link count and depth (levels) of every chain's current version."""
    out = []
    for chain in session.scalars(select(Chain).order_by(Chain.id)):
        stats = (
            session.execute(
                select(func.count(ChainLink.id), func.max(ChainLink.depth)).where(
                    ChainLink.version_id == chain.current_version_id
                )
            ).one()
            if chain.current_version_id
            else (0, 0)
        )
        out.append(
            {
                "id": chain.id,
                "name": chain.name,
                "sector": chain.sector,
                "version": chain.current_version.version if chain.current_version else None,
                "links": int(stats[0] or 0),
                "depth": int(stats[1] or 0),
            }
        )
    return out
