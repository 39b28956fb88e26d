"""Create the example's databases: a small seeded DCM4CHEE archive and an empty RBAC database.

    python examples/rbac/setup.py [--studies N] [--release 5.35|5.34] [--admin-url URL] [--reset]
    python examples/rbac/setup.py --add 200     # new studies, for `--mode incremental`

The archive (`rbac_example_archive`) gets the tables of the chosen dcm4chee-arc-light release
and a seeded set of patients, studies, series and worklist items from
`reconciler.drivers.rbac.archive_fixture`; the RBAC database (`rbac_example_rbac`) stays
empty: the reconciler creates its `rbac` schema on the first apply. Existing databases of
those names are left alone unless `--reset` (which drops and recreates exactly these two).
"""

from __future__ import annotations

import argparse
import sys

import psycopg

from reconciler.drivers.rbac.archive_fixture import ArchiveShape, add_studies, build_archive

ARCHIVE, RBAC = "rbac_example_archive", "rbac_example_rbac"


def _exists(admin: str, name: str) -> bool:
    with psycopg.connect(admin, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--studies", type=int, default=2000)
    parser.add_argument("--release", choices=["5.34", "5.35"], default="5.35")
    parser.add_argument("--reset", action="store_true", help="Drop and recreate the two example databases.")
    parser.add_argument("--add", type=int, default=0, metavar="N",
                        help="Only add N new studies to the archive.")
    args = parser.parse_args()
    base = args.admin_url.rsplit("/", 1)[0]
    if args.add:
        with psycopg.connect(f"{base}/{ARCHIVE}", autocommit=True) as conn:
            batch = add_studies(conn, args.release, ArchiveShape(), args.add)
        print(f"added studies {batch.first_study}..{batch.last_study} to {ARCHIVE}")
        return 0
    for name in (ARCHIVE, RBAC):
        if _exists(args.admin_url, name):
            if not args.reset:
                print(f"database {name} exists; run with --reset to recreate it", file=sys.stderr)
                return 1
            with psycopg.connect(args.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"{base}/{ARCHIVE}", autocommit=True) as conn:
        build_archive(conn, args.release, ArchiveShape(studies=args.studies))
    print(f"archive {ARCHIVE}: dcm4chee-arc-light {args.release} tables, {args.studies} studies")
    print(f"RBAC database {RBAC}: empty")
    print(f"export ARCHIVE_DATABASE_URL={base}/{ARCHIVE}")
    print(f"export RBAC_DATABASE_URL={base}/{RBAC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
