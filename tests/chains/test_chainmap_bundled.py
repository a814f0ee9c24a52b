"""The bundled data/chains and data/clusters load through the init steps and meet the size targets."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from chains.chainmap_io import chain_summaries
from chains.cluster_io import cluster_summaries
from chains.cluster_models import Cluster
from chains.evaluation import evaluate_cluster
from chains.gaps import analyze_cluster
from webapp.cli.init import INIT_STEPS
from webapp.extensions import db

DATA = Path(__file__).resolve().parents[2] / "data"
MIN_CHAINS, MIN_LINKS, MIN_LEVELS, MIN_CLUSTERS = 12, 20, 3, 8


def test_bundled_chains_and_clusters_load(app):
    steps = {order: fn for order, _, fn in INIT_STEPS}
    with app.app_context():
        for order in (10, 20, 30):  # chain maps, demo firms, clusters
            steps[order](app)
        chains = chain_summaries(db.session)
        files = sorted(p.stem for p in (DATA / "chains").glob("*.yaml"))
        assert sorted(c["id"] for c in chains) == files
        assert len(chains) >= MIN_CHAINS
        small = [(c["id"], c["links"], c["depth"]) for c in chains if c["links"] < MIN_LINKS or c["depth"] < MIN_LEVELS]
        assert not small, small

        clusters = cluster_summaries(db.session)
        assert len(clusters) >= MIN_CLUSTERS
        assert len(clusters) == len(list((DATA / "clusters").glob("*.yaml")))
        assert all(c["chains"] and c["firms"] > 0 for c in clusters), clusters
        for cluster in db.session.scalars(select(Cluster)):
            for gap in analyze_cluster(db.session, cluster.id):
                assert gap.rollup.leaf_links > 0
            assert evaluate_cluster(db.session, cluster.id).rules

        # Running the steps again changes nothing (unchanged files are no-ops).
        steps[10](app)
        steps[30](app)
        assert chain_summaries(db.session) == chains
        assert cluster_summaries(db.session) == clusters
