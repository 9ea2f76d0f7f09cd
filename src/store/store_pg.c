/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The "Postgres" backend (libpq): one table per namespace, named after the namespace,
 * `key TEXT PRIMARY KEY, value BYTEA` — trustee's layout, so a Cloister KBS and a trustee KBS
 * can share one database. A small pool of connections, each connected lazily; every statement
 * is prepared once per connection and table. A connection that breaks (the server restarted)
 * is dropped, reconnected and the statement retried once; if the server is still away the
 * call fails with EIO after the connect timeout and the next call tries again, so a replica
 * recovers without a restart. Timeouts: connect_timeout, tcp_user_timeout and
 * statement_timeout from the opts, and the wait for a free pooled connection.
 */
#include "store/store_backend.h"
#include "store/store_pool.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>

enum pg_op { PG_GET, PG_SET, PG_ADD, PG_DEL, PG_LIST, PG_CAS, PG_PURGE, PG_VER, PG_NOPS };

struct pg_conn {
    PGconn *c;
    char **prepared; /* "<op>:<ns>" already prepared on this connection */
    size_t nprep, capprep;
};

struct pg_store {
    struct cl_store_pool pool;
    struct pg_conn *conns; /* indexed by pool slot */
    size_t nconns;
    unsigned timeout_ms;
    /* connection parameters for PQconnectdbParams, NULL-terminated, owned */
    char *kw[12], *val[12];
};

/* libpq messages end with a newline and may span lines; keep the first line for the log. */
static const char *pg_msg(const PGconn *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", c ? PQerrorMessage(c) : "no connection");
    buf[strcspn(buf, "\r\n")] = '\0';
    return buf;
}

static void conn_drop(struct pg_conn *pc)
{
    if (pc->c)
        PQfinish(pc->c);
    pc->c = NULL;
    for (size_t i = 0; i < pc->nprep; i++)
        free(pc->prepared[i]);
    pc->nprep = 0;
}

static int conn_ensure(struct pg_store *st, struct pg_conn *pc, struct cl_err *err)
{
    if (pc->c && PQstatus(pc->c) == CONNECTION_OK)
        return 0;
    conn_drop(pc);
    pc->c = PQconnectdbParams((const char *const *)st->kw, (const char *const *)st->val, 1);
    if (!pc->c)
        return cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
    if (PQstatus(pc->c) != CONNECTION_OK) {
        char m[256];
        int rc = cl_err_set(err, CL_EIO, "Postgres: connect: %s", pg_msg(pc->c, m, sizeof m));
        conn_drop(pc);
        return rc;
    }
    return 0;
}

static struct pg_conn *pool_take(struct pg_store *st, struct cl_err *err)
{
    long i = cl_store_pool_take(&st->pool, err);
    return i < 0 ? NULL : &st->conns[i];
}

static void pool_give(struct pg_store *st, struct pg_conn *pc)
{
    cl_store_pool_give(&st->pool, (size_t)(pc - st->conns));
}

/* The SQL of op on table tbl (already quoted). Returns new. */
static char *op_sql(enum pg_op op, const char *tbl)
{
    static const char *const fmt[PG_NOPS] = {
        [PG_GET] = "SELECT value FROM %s WHERE key = $1",
        [PG_SET] =
            "INSERT INTO %s (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = "
            "EXCLUDED.value",
        [PG_ADD] = "INSERT INTO %s (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        [PG_DEL] = "DELETE FROM %s WHERE key = $1",
        [PG_LIST] = "SELECT key FROM %s",
        /* One statement: the update, and whether the key existed (the count reads the
         * snapshot before the update). */
        [PG_CAS] =
            "WITH u AS (UPDATE %1$s SET value = $3 WHERE key = $1 AND value = $2 RETURNING 1) "
            "SELECT (SELECT count(*) FROM u), (SELECT count(*) FROM %1$s WHERE key = $1)",
        /* Expiring values start with 20 zero-padded digits; byte order is time order. */
        [PG_PURGE] =
            "DELETE FROM %s WHERE length(value) >= 20 AND substring(value FROM 1 FOR 20) >= "
            "'00000000000000000000'::bytea AND substring(value FROM 1 FOR 20) <= $1::bytea",
        /* The version (the value's SHA-256, computed by the server) and the value only when
         * the version is not the caller's: an unchanged value costs 32 bytes on the wire. */
        [PG_VER] = "SELECT sha256(value), CASE WHEN sha256(value) = $2 THEN NULL ELSE value END "
                   "FROM %s WHERE key = $1",
    };
    char *sql = NULL;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    if (asprintf(&sql, fmt[op], tbl) < 0)
        sql = NULL;
#pragma GCC diagnostic pop
    return sql;
}

static const char *const op_names[PG_NOPS] = {"get",  "set", "add",   "del",
                                              "list", "cas", "purge", "ver"};

/* Statement names are at most 63 bytes: op + a hash of the namespace (namespaces are up to
 * 512 characters). */
static void stmt_name(enum pg_op op, const char *ns, char out[64])
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = ns; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    snprintf(out, 64, "cl_%s_%016" PRIx64, op_names[op], h);
}

static bool sqlstate_is(const PGresult *r, const char *code)
{
    const char *s = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    return s && strcmp(s, code) == 0;
}

/* Creates the namespace's table when absent. Two replicas creating it at once may see a
 * unique violation on the catalog: the other one won, which is fine. */
static int ensure_table(struct pg_conn *pc, const char *tbl, struct cl_err *err)
{
    char *sql = NULL;
    if (asprintf(&sql, "CREATE TABLE IF NOT EXISTS %s (key TEXT PRIMARY KEY, value BYTEA)", tbl) <
        0)
        return cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
    PGresult *r = PQexec(pc->c, sql);
    free(sql);
    int rc = 0;
    if (PQresultStatus(r) != PGRES_COMMAND_OK && !sqlstate_is(r, "23505") &&
        !sqlstate_is(r, "42P07")) {
        char m[256];
        rc = cl_err_set(err, CL_EIO, "Postgres: create table %s: %s", tbl,
                        pg_msg(pc->c, m, sizeof m));
    }
    PQclear(r);
    return rc;
}

static int prepare(struct pg_conn *pc, enum pg_op op, const char *ns, const char *name,
                   struct cl_err *err)
{
    char key[600];
    snprintf(key, sizeof key, "%s:%s", op_names[op], ns);
    for (size_t i = 0; i < pc->nprep; i++)
        if (strcmp(pc->prepared[i], key) == 0)
            return 0;
    char *tbl = PQescapeIdentifier(pc->c, ns, strlen(ns));
    if (!tbl)
        return cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
    int rc = ensure_table(pc, tbl, err);
    char *sql = rc == 0 ? op_sql(op, tbl) : NULL;
    PQfreemem(tbl);
    if (rc < 0)
        return rc;
    if (!sql)
        return cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
    PGresult *r = PQprepare(pc->c, name, sql, 0, NULL);
    free(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        char m[256];
        rc = cl_err_set(err, CL_EIO, "Postgres: prepare %s on \"%s\": %s", op_names[op], ns,
                        pg_msg(pc->c, m, sizeof m));
        PQclear(r);
        return rc;
    }
    PQclear(r);
    if (pc->nprep == pc->capprep) {
        size_t nc = pc->capprep ? pc->capprep * 2 : 8;
        char **np = reallocarray(pc->prepared, nc, sizeof *np);
        if (!np)
            return cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
        pc->prepared = np;
        pc->capprep = nc;
    }
    if (!(pc->prepared[pc->nprep] = strdup(key)))
        return cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
    pc->nprep++;
    return 0;
}

/* Runs op with its parameters on a pooled connection; *out = the result (caller PQclears,
 * status already checked) and the connection still held in *pcp (caller gives it back).
 * A connection found broken is reconnected and the statement retried once. */
static int run(struct pg_store *st, enum pg_op op, const char *ns, int n, const char *const *vals,
               const int *lens, const int *fmts, int result_fmt, struct pg_conn **pcp,
               PGresult **out, struct cl_err *err)
{
    char name[64];
    stmt_name(op, ns, name);
    struct pg_conn *pc = pool_take(st, err);
    if (!pc)
        return err ? err->code : CL_EIO;
    *pcp = pc;
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        if ((rc = conn_ensure(st, pc, err)) < 0)
            return rc;
        rc = prepare(pc, op, ns, name, err);
        if (rc == 0) {
            PGresult *r = PQexecPrepared(pc->c, name, n, vals, lens, fmts, result_fmt);
            ExecStatusType s = PQresultStatus(r);
            if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
                *out = r;
                return 0;
            }
            char m[256];
            rc = cl_err_set(err, sqlstate_is(r, "57014") ? CL_EEXPIRED : CL_EIO,
                            "Postgres: %s on \"%s\": %s", op_names[op], ns,
                            pg_msg(pc->c, m, sizeof m));
            PQclear(r);
        }
        if (pc->c && PQstatus(pc->c) == CONNECTION_OK)
            return rc; /* a statement error, not a broken connection: no retry */
        cl_warn("Postgres: connection lost (%s); reconnecting", err ? err->msg : "?");
        conn_drop(pc);
    }
    return rc;
}

static int affected(PGresult *r)
{
    const char *t = PQcmdTuples(r);
    return t && *t ? atoi(t) : 0;
}

static int pg_set(void *impl, const char *ns, const char *key, const void *data, size_t len,
                  bool overwrite, int64_t expires_unix, struct cl_err *err)
{
    (void)expires_unix; /* purged by cl_store_purge_expired's one DELETE */
    struct pg_store *st = impl;
    if (len > INT32_MAX)
        return cl_err_set(err, CL_ELIMIT, "Postgres: value too large");
    const char *vals[2] = {key, data};
    int lens[2] = {0, (int)len}, fmts[2] = {0, 1};
    struct pg_conn *pc = NULL;
    PGresult *r = NULL;
    int rc = run(st, overwrite ? PG_SET : PG_ADD, ns, 2, vals, lens, fmts, 0, &pc, &r, err);
    if (rc == 0 && !overwrite && affected(r) == 0)
        rc = cl_err_set(err, CL_EEXISTS, "store key \"%s\" in \"%s\": already exists", key, ns);
    PQclear(r);
    if (pc)
        pool_give(st, pc);
    return rc;
}

/* Copies column col of row 0 into a new NUL-terminated buffer. */
static cl_bytes *column_copy(PGresult *r, int col, size_t *len, struct cl_err *err)
{
    size_t n = (size_t)PQgetlength(r, 0, col);
    cl_bytes *v = malloc(n + 1);
    if (!v) {
        cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
        return NULL;
    }
    memcpy(v, PQgetvalue(r, 0, col), n);
    v[n] = 0;
    *len = n;
    return v;
}

static cl_bytes *pg_get(void *impl, const char *ns, const char *key, size_t *len,
                        struct cl_err *err)
{
    struct pg_store *st = impl;
    const char *vals[1] = {key};
    struct pg_conn *pc = NULL;
    PGresult *r = NULL;
    cl_bytes *v = NULL;
    if (run(st, PG_GET, ns, 1, vals, NULL, NULL, 1, &pc, &r, err) == 0) {
        if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))
            cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
        else
            v = column_copy(r, 0, len, err);
    }
    PQclear(r);
    if (pc)
        pool_give(st, pc);
    return v;
}

static int pg_get_if_changed(void *impl, const char *ns, const char *key, const uint8_t *have,
                             size_t have_len, uint8_t *ver, size_t *vlen, cl_bytes **val,
                             size_t *len, struct cl_err *err)
{
    struct pg_store *st = impl;
    const char *vals[2] = {key, have ? (const char *)have : ""};
    int lens[2] = {0, have ? (int)have_len : 0}, fmts[2] = {0, 1};
    struct pg_conn *pc = NULL;
    PGresult *r = NULL;
    int rc = run(st, PG_VER, ns, 2, vals, lens, fmts, 1, &pc, &r, err);
    if (rc == 0 && (PQntuples(r) != 1 || PQgetisnull(r, 0, 0))) {
        rc = cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    } else if (rc == 0 && (size_t)PQgetlength(r, 0, 0) > CL_STORE_VERSION_MAX) {
        rc = cl_err_set(err, CL_EIO, "Postgres: version of \"%s\": unexpected length", key);
    } else if (rc == 0) {
        *vlen = (size_t)PQgetlength(r, 0, 0);
        memcpy(ver, PQgetvalue(r, 0, 0), *vlen);
        if (!PQgetisnull(r, 0, 1))
            rc = (*val = column_copy(r, 1, len, err)) ? 1 : CL_ENOMEM;
    }
    PQclear(r);
    if (pc)
        pool_give(st, pc);
    return rc;
}

static int pg_del(void *impl, const char *ns, const char *key, struct cl_err *err)
{
    struct pg_store *st = impl;
    const char *vals[1] = {key};
    struct pg_conn *pc = NULL;
    PGresult *r = NULL;
    int rc = run(st, PG_DEL, ns, 1, vals, NULL, NULL, 0, &pc, &r, err);
    if (rc == 0 && affected(r) == 0)
        rc = cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found", key, ns);
    PQclear(r);
    if (pc)
        pool_give(st, pc);
    return rc;
}

static int pg_list(void *impl, const char *ns, char ***keys, size_t *n, struct cl_err *err)
{
    struct pg_store *st = impl;
    struct pg_conn *pc = NULL;
    PGresult *r = NULL;
    int rc = run(st, PG_LIST, ns, 0, NULL, NULL, NULL, 0, &pc, &r, err);
    char **out = NULL;
    size_t cnt = 0;
    if (rc == 0) {
        size_t rows = (size_t)PQntuples(r);
        out = rows ? calloc(rows, sizeof *out) : NULL;
        if (rows && !out)
            rc = cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
        for (size_t i = 0; rc == 0 && i < rows; i++) {
            const char *k = PQgetvalue(r, (int)i, 0);
            if (!cl_store_key_valid(k)) /* a row written by someone else; not ours to name */
                continue;
            if (!(out[cnt] = strdup(k)))
                rc = cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
            else
                cnt++;
        }
    }
    PQclear(r);
    if (pc)
        pool_give(st, pc);
    if (rc < 0) {
        cl_store_list_free(out, cnt);
        return rc;
    }
    if (cnt == 0) {
        free(out);
        out = NULL;
    }
    *keys = out;
    *n = cnt;
    return 0;
}

static int pg_cas(void *impl, const char *ns, const char *key, const void *old_data, size_t old_len,
                  const void *new_data, size_t new_len, struct cl_err *err)
{
    struct pg_store *st = impl;
    if (old_len > INT32_MAX || new_len > INT32_MAX)
        return cl_err_set(err, CL_ELIMIT, "Postgres: value too large");
    const char *vals[3] = {key, old_data, new_data};
    int lens[3] = {0, (int)old_len, (int)new_len}, fmts[3] = {0, 1, 1};
    struct pg_conn *pc = NULL;
    PGresult *r = NULL;
    int rc = run(st, PG_CAS, ns, 3, vals, lens, fmts, 0, &pc, &r, err);
    if (rc == 0) {
        bool swapped = PQntuples(r) == 1 && atoi(PQgetvalue(r, 0, 0)) == 1;
        bool existed = PQntuples(r) == 1 && atoi(PQgetvalue(r, 0, 1)) == 1;
        if (!swapped)
            rc = existed ? cl_err_set(err, CL_EEXISTS,
                                      "store key \"%s\" in \"%s\": changed meanwhile", key, ns)
                         : cl_err_set(err, CL_ENOTFOUND, "store key \"%s\" in \"%s\": not found",
                                      key, ns);
    }
    PQclear(r);
    if (pc)
        pool_give(st, pc);
    return rc;
}

static int pg_purge(void *impl, const char *ns, const char bound[CL_STORE_EXP_DIGITS], size_t *n,
                    struct cl_err *err)
{
    struct pg_store *st = impl;
    const char *vals[1] = {bound};
    int lens[1] = {CL_STORE_EXP_DIGITS}, fmts[1] = {1};
    struct pg_conn *pc = NULL;
    PGresult *r = NULL;
    int rc = run(st, PG_PURGE, ns, 1, vals, lens, fmts, 0, &pc, &r, err);
    if (rc == 0)
        *n = (size_t)affected(r);
    PQclear(r);
    if (pc)
        pool_give(st, pc);
    return rc;
}

static void pg_close(void *impl)
{
    struct pg_store *st = impl;
    if (!st)
        return;
    for (size_t i = 0; st->conns && i < st->nconns; i++) {
        conn_drop(&st->conns[i]);
        free(st->conns[i].prepared);
    }
    free(st->conns);
    for (size_t i = 0; i < CL_ARRAY_LEN(st->kw); i++) {
        free(st->kw[i]);
        if (st->val[i])
            explicit_bzero(st->val[i], strlen(st->val[i]));
        free(st->val[i]);
    }
    cl_store_pool_destroy(&st->pool);
    free(st);
}

static int add_param(struct pg_store *st, size_t *i, const char *k, const char *v)
{
    if (!v)
        return 0;
    if (*i + 1 >= CL_ARRAY_LEN(st->kw))
        return CL_ELIMIT;
    st->kw[*i] = strdup(k);
    st->val[*i] = strdup(v);
    if (!st->kw[*i] || !st->val[*i])
        return CL_ENOMEM;
    (*i)++;
    return 0;
}

static void *pg_open(const struct cl_store_opts *o, struct cl_err *err)
{
    struct pg_store *st = calloc(1, sizeof *st);
    if (!st) {
        cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
        return NULL;
    }
    st->timeout_ms = o->timeout_ms ? o->timeout_ms : CL_STORE_TIMEOUT_MS_DEFAULT;
    st->nconns = o->pool_size ? o->pool_size : CL_STORE_POOL_DEFAULT;
    st->conns = calloc(st->nconns, sizeof *st->conns);
    if (!st->conns ||
        cl_store_pool_init(&st->pool, st->nconns, st->timeout_ms, "Postgres", err) < 0) {
        cl_err_set(err, CL_ENOMEM, "Postgres: out of memory");
        pg_close(st);
        return NULL;
    }
    char port[16], cto[16], tuto[16], opts[96];
    snprintf(port, sizeof port, "%u", o->pg_port ? o->pg_port : 5432);
    snprintf(cto, sizeof cto, "%u", st->timeout_ms < 2000 ? 2 : (st->timeout_ms + 999) / 1000);
    snprintf(tuto, sizeof tuto, "%u", st->timeout_ms);
    snprintf(opts, sizeof opts, "-c statement_timeout=%u -c client_min_messages=warning",
             st->timeout_ms);
    size_t i = 0;
    int rc = st->conns ? 0 : CL_ENOMEM;
    /* A URL is expanded by libpq ("dbname" holding a URI, expand_dbname = 1); the timeouts
     * that follow it are Cloister's and are added to whatever the URL says. */
    if (o->pg_url) {
        if (rc == 0)
            rc = add_param(st, &i, "dbname", o->pg_url);
    } else {
        if (rc == 0)
            rc = add_param(st, &i, "host", o->pg_host ? o->pg_host : "localhost");
        if (rc == 0)
            rc = add_param(st, &i, "port", port);
        if (rc == 0)
            rc = add_param(st, &i, "dbname", o->pg_db ? o->pg_db : "postgres");
        if (rc == 0)
            rc = add_param(st, &i, "user", o->pg_user ? o->pg_user : "postgres");
        if (rc == 0)
            rc = add_param(st, &i, "password", o->pg_password);
    }
    if (rc == 0)
        rc = add_param(st, &i, "connect_timeout", cto);
    if (rc == 0)
        rc = add_param(st, &i, "tcp_user_timeout", tuto);
    if (rc == 0)
        rc = add_param(st, &i, "options", opts);
    if (rc == 0)
        rc = add_param(st, &i, "application_name", "cloister-kbs");
    if (rc < 0) {
        cl_err_set(err, rc, "Postgres: connection parameters: %s",
                   rc == CL_ENOMEM ? "out of memory" : "too many");
        pg_close(st);
        return NULL;
    }
    /* Connect one now, so that a wrong address or password is reported at start-up. */
    struct pg_conn *pc = &st->conns[0];
    if (conn_ensure(st, pc, err) < 0) {
        pg_close(st);
        return NULL;
    }
    return st;
}

const struct cl_store_backend cl_store_backend_postgres = {
    .name = "Postgres",
    .alias = "postgres",
    .shared = true,
    .open = pg_open,
    .set = pg_set,
    .get = pg_get,
    .del = pg_del,
    .list = pg_list,
    .cas = pg_cas,
    .purge = pg_purge,
    .get_if_changed = pg_get_if_changed,
    .close = pg_close,
};
