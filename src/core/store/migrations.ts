/**
 * Versioned schema migrations, applied in order on start and recorded in `schema_migrations`. Append new
 * versions; never edit an applied one.
 */

export interface Migration {
  version: number;
  sql: string;
}

/** Version 3 of both drivers: the secondary index table (indexes.ts), the same SQL in both dialects. */
const RESOURCE_INDEX_SQL = `
  CREATE TABLE resource_index (kind TEXT NOT NULL, idx TEXT NOT NULL, value TEXT NOT NULL,
    name TEXT NOT NULL, PRIMARY KEY (kind, idx, value, name));
  CREATE INDEX resource_index_by_object ON resource_index (kind, name);
  INSERT INTO counters (name, value) VALUES ('index_version', 0);
`;

export const SQLITE_MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE resources (
        kind TEXT NOT NULL, name TEXT NOT NULL, api_version TEXT NOT NULL,
        meta TEXT NOT NULL, spec TEXT NOT NULL, status TEXT, rv INTEGER NOT NULL,
        PRIMARY KEY (kind, name));
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      INSERT INTO counters (name, value) VALUES ('rv', 0);
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT, time TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        step TEXT, source TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, data TEXT);
      CREATE INDEX events_by_object ON events (kind, name, id);
      CREATE TABLE records (collection TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (collection, key));
    `,
  },
  {
    // The change log behind resumable watches; everything before it counts as compacted.
    version: 2,
    sql: `
      CREATE TABLE changes (rv INTEGER PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL,
        name TEXT NOT NULL, object TEXT NOT NULL);
      INSERT INTO counters (name, value) SELECT 'compacted', value FROM counters WHERE name = 'rv';
    `,
  },
  {
    // Secondary indexes (indexes.ts), kept in the resource's own transaction; filled on open, when the
    // stored index version differs from the code's.
    version: 3,
    sql: RESOURCE_INDEX_SQL,
  },
];

export const POSTGRES_MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE resources (
        kind TEXT NOT NULL, name TEXT NOT NULL, api_version TEXT NOT NULL,
        meta JSONB NOT NULL, spec JSONB NOT NULL, status JSONB, rv BIGINT NOT NULL,
        PRIMARY KEY (kind, name));
      CREATE SEQUENCE resource_versions;
      CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY, time TIMESTAMPTZ NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        step TEXT, source TEXT NOT NULL, type TEXT NOT NULL, reason TEXT NOT NULL, message TEXT NOT NULL, data JSONB);
      CREATE INDEX events_by_object ON events (kind, name, id);
      CREATE TABLE records (collection TEXT NOT NULL, key TEXT NOT NULL, value JSONB NOT NULL,
        PRIMARY KEY (collection, key));
    `,
  },
  {
    version: 2,
    sql: `
      CREATE TABLE changes (rv BIGINT PRIMARY KEY, type TEXT NOT NULL, kind TEXT NOT NULL,
        name TEXT NOT NULL, object JSONB NOT NULL);
      CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
      INSERT INTO counters (name, value) SELECT 'compacted',
        CASE WHEN is_called THEN last_value ELSE 0 END FROM resource_versions;
    `,
  },
  {
    version: 3,
    sql: RESOURCE_INDEX_SQL,
  },
  {
    // Lists read by name in "C" order (both drivers sort alike whatever the locale), a keyset page at a
    // time. The primary key is in the database's collation (C.UTF-8 is not "C" to PostgreSQL 15), so it
    // cannot give that order: every page sorted all of a kind's rows after its cursor (17 of a 501-row
    // page's 26 ms at 10,000 Nodes); with this index a page reads its own rows only (3 ms).
    version: 4,
    sql: 'CREATE INDEX resources_by_name ON resources (kind, name COLLATE "C")',
  },
];
