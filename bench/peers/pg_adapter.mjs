// A PostgreSQL storage adapter for oidc-provider, written for bench/peers (not a general-purpose
// adapter): it lets the peer keep its state in a durable database, as FreshID does on
// PostgreSQL, instead of its default in-process memory adapter.
//
// It follows oidc-provider's adapter interface: `new Adapter(name)` for each model name
// (Session, Grant, AuthorizationCode, RefreshToken, AccessToken, Interaction, ...) with
// upsert(id, payload, expiresIn), find(id), findByUserCode(userCode), findByUid(uid),
// consume(id), destroy(id) and revokeByGrantId(grantId). Every model lives in one table, keyed
// by (id, type); grant_id, user_code and uid are copied out of the payload into indexed columns.
//
// - upsert is one INSERT ... ON CONFLICT DO UPDATE; it replaces the whole record (a consumed
//   mark included), as the memory adapter does. expires_at is now() + expiresIn on the
//   database's clock, or NULL when oidc-provider gives no lifetime.
// - find, findByUid and findByUserCode return undefined for a row past its expires_at, and set
//   `consumed` (epoch seconds) in the payload they return when consumed_at is set: that is how
//   oidc-provider tells that a refresh token or an authorization code is used a second time.
// - consume is one UPDATE, destroy and revokeByGrantId one DELETE each (revokeByGrantId only
//   removes rows of its own model, as oidc-provider calls it once per grantable model).
// - Each call is one statement in autocommit, on a connection from a pg.Pool: commits are
//   durable (the server's synchronous_commit, by default on). Parameterised queries only.
// - Expired rows are hidden, never swept: fine for a benchmark's throwaway database.
//
// With `countStatements`, the store counts the statements it sends, per model and method
// (`statements()`), so a run can tell how many one request costs.
import pg from 'pg';

const TABLE = 'oidc_payloads';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS ${TABLE} (
     id text NOT NULL,
     type text NOT NULL,
     payload jsonb NOT NULL,
     grant_id text,
     user_code text,
     uid text,
     expires_at timestamptz,
     consumed_at timestamptz,
     PRIMARY KEY (id, type)
   )`,
  `CREATE INDEX IF NOT EXISTS ${TABLE}_grant_id ON ${TABLE} (grant_id)`,
  `CREATE INDEX IF NOT EXISTS ${TABLE}_user_code ON ${TABLE} (user_code)`,
  `CREATE INDEX IF NOT EXISTS ${TABLE}_uid ON ${TABLE} (uid)`,
];

const UPSERT = `
  INSERT INTO ${TABLE} (id, type, payload, grant_id, user_code, uid, expires_at, consumed_at)
  VALUES ($1, $2, $3, $4, $5, $6, now() + $7::double precision * interval '1 second', NULL)
  ON CONFLICT (id, type) DO UPDATE SET
    payload = excluded.payload,
    grant_id = excluded.grant_id,
    user_code = excluded.user_code,
    uid = excluded.uid,
    expires_at = excluded.expires_at,
    consumed_at = NULL`;

const LIVE = '(expires_at IS NULL OR expires_at > now())';
const COLUMNS = 'payload, extract(epoch FROM consumed_at)::bigint AS consumed';
const FIND = `SELECT ${COLUMNS} FROM ${TABLE} WHERE id = $1 AND type = $2 AND ${LIVE}`;
const FIND_BY_UID = `SELECT ${COLUMNS} FROM ${TABLE} WHERE uid = $1 AND type = $2 AND ${LIVE}
  LIMIT 1`;
const FIND_BY_USER_CODE = `SELECT ${COLUMNS} FROM ${TABLE}
  WHERE user_code = $1 AND type = $2 AND ${LIVE} LIMIT 1`;
const CONSUME = `UPDATE ${TABLE} SET consumed_at = now() WHERE id = $1 AND type = $2`;
const DESTROY = `DELETE FROM ${TABLE} WHERE id = $1 AND type = $2`;
const REVOKE_BY_GRANT_ID = `DELETE FROM ${TABLE} WHERE grant_id = $1 AND type = $2`;

function record(result) {
  const row = result.rows[0];
  if (row === undefined) return undefined;
  const { payload } = row;
  if (row.consumed !== null) payload.consumed = Number(row.consumed);
  return payload;
}

function text(value) {
  return typeof value === 'string' ? value : null;
}

export class PgStore {
  constructor(connectionString, { poolSize = 10, countStatements = false } = {}) {
    this.pool = new pg.Pool({ connectionString, max: poolSize });
    // An idle connection that breaks (the database dropped under it) must not end the process.
    this.pool.on('error', (err) => { process.stderr.write(`pg pool: ${err.message}\n`); });
    this.counts = countStatements ? new Map() : undefined;
  }

  get counting() {
    return this.counts !== undefined;
  }

  async query(label, sql, values) {
    if (this.counts !== undefined) this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
    return this.pool.query(sql, values);
  }

  /** Creates the table and its indexes when missing. */
  async createSchema() {
    for (const statement of SCHEMA) {
      await this.pool.query(statement);
    }
  }

  /** Statements sent so far: {total, byCall: {"RefreshToken.find": n, ...}}. */
  statements() {
    const byCall = Object.fromEntries([...(this.counts ?? new Map())].sort());
    const total = Object.values(byCall).reduce((sum, n) => sum + n, 0);
    return { total, byCall };
  }

  async end() {
    await this.pool.end();
  }

  /** The adapter class for oidc-provider's `adapter` option, on this store's pool. */
  adapter() {
    const store = this;
    return class PgAdapter {
      constructor(name) {
        this.name = name;
      }

      async upsert(id, payload, expiresIn) {
        await store.query(`${this.name}.upsert`, UPSERT, [
          id,
          this.name,
          JSON.stringify(payload),
          text(payload.grantId),
          text(payload.userCode),
          text(payload.uid),
          typeof expiresIn === 'number' ? expiresIn : null,
        ]);
      }

      async find(id) {
        return record(await store.query(`${this.name}.find`, FIND, [id, this.name]));
      }

      async findByUid(uid) {
        return record(await store.query(`${this.name}.findByUid`, FIND_BY_UID, [uid, this.name]));
      }

      async findByUserCode(userCode) {
        return record(await store.query(
          `${this.name}.findByUserCode`,
          FIND_BY_USER_CODE,
          [userCode, this.name],
        ));
      }

      async consume(id) {
        await store.query(`${this.name}.consume`, CONSUME, [id, this.name]);
      }

      async destroy(id) {
        await store.query(`${this.name}.destroy`, DESTROY, [id, this.name]);
      }

      async revokeByGrantId(grantId) {
        await store.query(
          `${this.name}.revokeByGrantId`,
          REVOKE_BY_GRANT_ID,
          [grantId, this.name],
        );
      }
    };
  }
}
