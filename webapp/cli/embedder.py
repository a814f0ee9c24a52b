"""`chainmatch embedder …`: the static embedder trained from the pretrained model (for registries too large for it)."""

from __future__ import annotations

import click
import numpy as np
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from matching.embedders.static_training import EPOCHS
from webapp.extensions import db

TRAIN_SAMPLE = 20_000  # profiles the static embedder is fitted on by default (≈ 8 min of transformer encoding)


@click.group("embedder")
def embedder_group() -> None:
    """The static embedder (trained from the pretrained model)."""


@embedder_group.command("train-static")
@click.option(
    "--sample",
    default=TRAIN_SAMPLE,
    show_default=True,
    help="Registry profiles (spread evenly over the registry) the static embedder is fitted on.",
)
@click.option("--epochs", default=EPOCHS, show_default=True, help="Fitting epochs.")
@with_appcontext
def train_static(sample: int, epochs: int) -> None:
    """Train a static embedder from the configured pretrained model on the registry's profiles and use it.

    The model encodes the sampled profiles (through the vector cache: an interrupted run resumes) and phrases cut
    from them; the static embedder is fitted to those vectors (docs/matching.md). CHAINMATCH_EMBEDDER=static, or
    auto above CHAINMATCH_STATIC_EMBEDDER_ABOVE firms, then searches with it (the index is rebuilt)."""
    from chains.enterprise_models import Enterprise
    from matching.embedders.static import set_current, write_model
    from matching.embedders.static_training import train
    from matching.embedders.vector_cache import cached_encoders
    from webapp.cli.match import progress_bar
    from webapp.services.match.embedding import cache_root, forget_static_model, models_dir, transformer_for
    from webapp.services.match.profiles import profile_for

    app = current_app._get_current_object()
    ids = list(db.session.scalars(select(Enterprise.id).order_by(Enterprise.id)))
    if not ids:
        raise click.ClickException("企业库为空，无法训练静态嵌入器 (the registry is empty)")
    chosen = [ids[i] for i in np.unique(np.linspace(0, len(ids) - 1, min(sample, len(ids))).astype(int))]
    texts = []
    for start in range(0, len(chosen), 5000):
        rows = db.session.scalars(select(Enterprise).where(Enterprise.id.in_(chosen[start : start + 5000])))
        texts.extend(profile_for(e).text for e in rows)
    teacher = transformer_for(app)
    click.echo(f"教师模型 {teacher.name}；训练样本 {len(texts)} 家企业（共 {len(ids)} 家）")
    with progress_bar("静态嵌入器") as bar:
        documents, queries = cached_encoders(teacher, cache_root(app))
        vocab, tables, figures = train(
            texts, documents, queries, epochs=epochs, progress=lambda step, done, total: bar(done, total)
        )
    folder = write_model(models_dir(app), teacher.name, vocab, tables, figures)
    set_current(models_dir(app), teacher.name, folder)
    forget_static_model(app)
    click.echo(
        f"已训练静态嵌入器 {folder.name[:12]}：词表 {figures['vocabulary']}，短语 {figures['phrases']}，"
        f"损失 {figures['loss']}，用时 {figures['seconds']} 秒"
    )
    click.echo(
        "设置 CHAINMATCH_EMBEDDER=static（或 auto 且企业数超过 CHAINMATCH_STATIC_EMBEDDER_ABOVE）后，"
        "索引将以静态嵌入器重建。"
    )


COMMANDS = [embedder_group]
