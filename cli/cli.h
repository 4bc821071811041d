/*
 * cli.h — what the files of the `kith` command share: the per-invocation context, the
 * command table's row type, option parsing with kith's error conventions, and the output
 * helpers (aligned tables, JSON built with jansson, ids and times as text).
 *
 * The CLI is an ordinary client of include/kith.h and nothing else (STYLE.md §1). Its
 * contract with users and scripts — every command, exit code and --json schema — is
 * spec/cli.md; doc/kith.1 is the manual. Exit codes: 0 ok, 1 failure, 2 usage error, 130
 * a long command stopped by Ctrl-C.
 */
#ifndef KITH_CLI_H
#define KITH_CLI_H

#include <kith.h>

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum {
    CLI_OK = 0,         /* the command did what was asked */
    CLI_FAIL = 1,       /* it could not: bad value, unknown id, damaged replica, I/O error */
    CLI_USAGE = 2,      /* the command line itself is wrong */
    CLI_CANCELLED = 130 /* Ctrl-C stopped a long command cleanly (128 + SIGINT, as shells say) */
};

/* One invocation: where the replica lives and which command runs, for messages. */
struct cli {
    const char *dir;     /* replica directory, after --dir / $KITH_DIR / XDG resolution */
    const char *name;    /* the command as the user says it: "contact add" */
    const char *usage;   /* its usage line without "kith ": "contact add --name N ..." */
    const char *summary; /* what it does, in one line (for --help) */
    bool color_out;      /* stdout is a terminal and NO_COLOR is unset */
    bool color_err;      /* likewise for stderr */
};

typedef int (*cli_fn)(struct cli *c, int argc, char **argv);

/* A row of the command table (main.c): "group sub" or a lone "group" when sub is NULL. */
struct cli_command {
    const char *group;
    const char *sub;
    cli_fn fn;
    const char *usage;   /* arguments after the command words */
    const char *summary; /* one line for `kith help` */
};

/* ---- errors and usage (out.c) ---------------------------------------------------------- */

/* "kith: contact add: <message>" on stderr; returns CLI_FAIL. printf-style. */
int cli_fail(const struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As cli_fail, then "usage: kith <usage>"; returns CLI_USAGE. */
int cli_usage_error(const struct cli *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* A library failure: "kith: CMD: WHAT: <kith_errmsg(r) or kith_strerror(rc)>"; CLI_FAIL.
 * `r` and `what` may be NULL. */
int cli_fail_rc(const struct cli *c, kith_replica *r, const char *what, int rc);

/*
 * getopt_long with kith's conventions: the optstring is used as given (callers start it with
 * ":" to be told of missing arguments, and with "+:" to stop at the first operand), errors
 * are reported as usage errors naming the option. Returns the option, -1 at the end of the
 * options, or '?' after printing the error (the caller returns CLI_USAGE). Call
 * cli_opt_reset() before the first call for a new argv.
 */
void cli_opt_reset(void);
int cli_getopt(const struct cli *c, int argc, char **argv, const char *optstring,
               const struct option *longopts);
/* Print the usage line of the current command to stdout (for --help); returns CLI_OK. */
int cli_help(const struct cli *c);
/* The default of every option switch: after --help ('h') print the usage and return CLI_OK;
 * anything else cli_getopt has reported already: return CLI_USAGE. */
int cli_opt_other(const struct cli *c, int ch);
/*
 * For commands whose only options are --json and --help: parse them, then check that
 * between min and max operands follow (from argv[optind]). Returns -1 to go on, or the exit
 * code to return at once (CLI_OK after --help, CLI_USAGE after a mistake). `json` may be
 * NULL when the command has no --json.
 */
int cli_parse_simple(const struct cli *c, int argc, char **argv, bool *json, int min, int max);

/* ---- the long commands: progress line and Ctrl-C (progress.c) ------------------------- */

/* One long call's progress line on stderr. */
struct cli_progress {
    kith_replica *r;  /* whose callback is set; NULL once ended */
    const char *what; /* what the call does, first on the line: "applying bundle" */
    bool draw;        /* stderr is a terminal, TERM is not "dumb", no --json or --quiet */
    bool drawn;       /* a line is on the terminal, to be erased */
    int64_t last_ms;  /* when it was drawn (monotonic) */
};

/* Before a long call on r: set r's progress callback, which draws the line when p->draw and
 * cancels the call after a SIGINT (cli_sigint_catch is called here). `quiet`: --json or
 * --quiet, no line. */
void cli_progress_begin(struct cli_progress *p, kith_replica *r, const char *what, bool quiet);
/* After it: erase the line, clear the callback. */
void cli_progress_end(struct cli_progress *p);
/* "applying bundle  12,345 / 100,000 ops  12%", or "... 12,345 ops" while total is 0; the
 * length written (at most cap - 1). */
size_t cli_progress_format(char *out, size_t cap, const char *what, uint64_t done, uint64_t total);
/* From now on SIGINT sets the flag cli_interrupted reads (unless it was ignored when kith
 * started: a background job's stays ignored). */
void cli_sigint_catch(void);
bool cli_interrupted(void);
/* "kith: CMD: cancelled; <what_holds>" on stderr; returns CLI_CANCELLED. */
int cli_cancelled(const struct cli *c, const char *what_holds);
/* cli_parse_simple for the long commands: --json, --quiet (-q), --help (out.c). */
int cli_parse_long(const struct cli *c, int argc, char **argv, bool *json, bool *quiet, int min,
                   int max);

/* ---- opening the replica (main.c) ------------------------------------------------------- */

enum cli_open_mode {
    CLI_READ,  /* read only */
    CLI_WRITE, /* read and write an existing replica */
    CLI_CREATE /* create it if absent */
};

/* Open the replica in c->dir; on failure print why (no replica: say run `kith init`) and
 * return CLI_FAIL with *out NULL. */
int cli_open(const struct cli *c, enum cli_open_mode mode, kith_replica **out);

/* ---- a transaction around a command's work (txn.c) -------------------------------------- */

/* cli_open, then begin a transaction (a write one unless mode is CLI_READ). CLI_OK with both
 * handles, or the failure reported and CLI_FAIL with *r and *t NULL (nothing to close). */
int cli_begin(const struct cli *c, enum cli_open_mode mode, kith_replica **r, kith_txn **t);
/* End a write begun by cli_begin: commit when rc is CLI_OK (a failed commit is reported as
 * "commit: ..." and becomes CLI_FAIL), else abort; close the replica. Returns the outcome. */
int cli_finish(const struct cli *c, kith_replica *r, kith_txn **t, int rc);
/* cli_finish for a command that created the document `doc`: on success, print its id. */
int cli_finish_new(const struct cli *c, kith_replica *r, kith_txn **t, int rc,
                   const kith_docid *doc);
/* Abort the transaction (a read, or a write given up) and close the replica. */
void cli_end(kith_replica *r, kith_txn **t);

/* ---- argument values (args.c) ----------------------------------------------------------- */

/* Lowercase hex of `len` bytes into `out` (2*len+1 chars). */
void cli_hex(const uint8_t *bytes, size_t len, char *out);
/* A replica id as 16 lowercase hex chars. */
void cli_id_hex(uint64_t id, char out[KITH_ID_HEX + 1]);
/* Parse exactly 2*len hex digits (either case). 0 or -1. */
int cli_unhex(const char *text, uint8_t *out, size_t len);
/* Parse a replica id (16 hex digits). 0 or -1. */
int cli_parse_id(const char *text, uint64_t *out);
/* Parse a decimal unsigned number (no sign, no space, fits in u64). 0 or -1. */
int cli_parse_u64(const char *text, uint64_t *out);
/* Parse a duration: "30s", "500ms", "2m", "1h", or bare seconds. 0 or -1. */
int cli_parse_duration(const char *text, int *ms);
/* Now, in milliseconds since the epoch. */
int64_t cli_now_ms(void);

/*
 * Find the live document of `collection` whose id is `text` or starts with it (at least 6
 * hex chars). Prints the problem and returns CLI_FAIL when the text is not hex, too short,
 * matches nothing or more than one; 0 with the id in *out otherwise.
 */
int cli_resolve(const struct cli *c, kith_txn *t, const char *collection, const char *text,
                kith_docid *out);

/*
 * A document id for `what` (a field or an option, named in messages: "kith: put: contact: no
 * contact with id ...") that refers into collection `to`: 32 hex digits or a unique prefix of
 * a live document, as cli_resolve takes. With `live` false a full id is taken as it is, live
 * or not (to remove a deleted document from a set of references). CLI_OK or CLI_FAIL.
 */
int cli_resolve_ref(const struct cli *c, kith_txn *t, const char *what, const char *to,
                    const char *text, bool live, kith_docid *out);

/*
 * Text as a value of the declared type `type` (a type name of a schema document: "string",
 * "integer", "time", "date", "boolean", "bytes", "enum", "ref"), read as kith_value_parse
 * reads text (spec/data-model.md 2.2), and bytes as hex digits, decoded in place (the CLI
 * prints bytes as hex). Syntax only: whether the value fits its field (bounds, enum values,
 * lengths, the calendar) the library checks when it is written. 0, or KITH_ESCHEMA with the
 * reason in `why` ("not a decimal integer"). String-like values point into `text`.
 *
 * Values for a field go through kith_value_parse_in, which also checks them; this reads
 * what that cannot: bytes (as hex), and range bounds, which need not be valid values of their
 * field. Times go through kith_time_parse.
 */
int cli_parse_typed(const char *type, char *text, kith_value *out, char *why, size_t cap);

/* The schema's definition of a collection, or of one of its fields; NULL if unknown. */
const kith_collection_def *cli_collection(const char *name);
const kith_field_def *cli_field(const char *collection, const char *field);

/* Parse `text` for collection.field with kith_value_parse; on failure print
 * "kith: CMD: <field>: <why>" and return CLI_FAIL. */
int cli_value(const struct cli *c, const char *collection, const char *field, const char *text,
              kith_value *out);

/* ---- output (out.c) ------------------------------------------------------------------------ */

/*
 * A list written as it is produced, so that memory stays flat however long it is (CLI-11):
 * with --json as {"<key>": [...]}, byte for byte what cli_json_print_in would print for the
 * whole array, one element at a time; otherwise as a table with aligned columns, which takes
 * two passes over the same rows, the first measuring the columns and the second printing.
 *
 * A command describes its list with cli_list_init and writes it with cli_list_run, giving a
 * fill function that produces every element, in order, through cli_list_json (with --json)
 * or cli_list_row (otherwise). A list with no columns has no table: its fill prints the
 * human form itself, once.
 */
#define CLI_LIST_MAXCOLS 16

struct cli_list {
    bool json;                      /* {"<key>": [...]} rather than a table */
    const char *key;                /* the top-level JSON key */
    size_t ncols;                   /* table columns (at most CLI_LIST_MAXCOLS); 0: none */
    const char *const *head;        /* the header row, ncols strings */
    bool color;                     /* bold header: stdout is a terminal */
    bool measuring;                 /* the table's first pass: rows widen columns, print nothing */
    size_t width[CLI_LIST_MAXCOLS]; /* each column's widest cell, once measured */
    size_t n;                       /* elements written (or measured) by this pass so far */
    int werr;                       /* errno of the first failed write to stdout, 0 if none */
};

/* Produce the list's elements; 0, or a negative code (kith's or -errno) that ends the list. */
typedef int (*cli_list_fill)(struct cli_list *l, void *ctx);

/* Describe a list; nothing is allocated, and nothing is printed until cli_list_run. */
void cli_list_init(struct cli_list *l, bool json, const char *key, size_t ncols,
                   const char *const *head);
/*
 * Print the list on stdout: call fill(l, ctx) once (JSON, or no columns) or twice (a table;
 * both calls must produce the same rows, as they do inside one read transaction) and close
 * the list. Returns CLI_OK; or CLI_FAIL after reporting a failed write ("writing output: ...")
 * or the code fill returned, as cli_fail_rc(c, r, what, code) does. A failure partway leaves
 * the list on stdout unfinished: with --json, a document no JSON parser accepts.
 */
int cli_list_run(const struct cli *c, kith_replica *r, const char *what, struct cli_list *l,
                 cli_list_fill fill, void *ctx);
/* Write one element of a --json list, taking elem's reference (NULL: KITH_ENOMEM). 0, or
 * the code to return from fill. */
int cli_list_json(struct cli_list *l, json_t *elem);
/* Write (or measure) one table row of ncols strings; NULL prints as "-", control characters
 * as '?'. 0, or the code to return from fill. */
int cli_list_row(struct cli_list *l, const char *const *row);

/* Render a value for humans into `out` (a heap string the caller frees), or NULL on OOM.
 * Strings as they are (control characters replaced), times ISO 8601, refs hex, null "-". */
char *cli_value_text(const kith_value *v);
/* The same value for JSON: strings, ISO times, hex refs/bytes, numbers, bools, null. */
json_t *cli_value_json(const kith_value *v);

/* Times as ISO 8601 strings, and an HLC as its wall-clock part. */
/* One op of the log (or the journal) as `kith log` shows it: a JSON object, or a table row
 * whose OP column ends with `note` (NULL: " (pending)" for an op not applied). */
json_t *log_entry_json(const kith_log_entry *e);
int log_entry_row(struct cli_list *l, const kith_log_entry *e, const char *note);
void cli_time(int64_t ms, char out[32]);
json_t *cli_json_time(int64_t ms);
json_t *cli_json_id(uint64_t id);
json_t *cli_json_docid(const kith_docid *d);
json_t *cli_json_hex(const uint8_t *bytes, size_t len);
/* A version vector as {"<origin hex>": seq, ...}. */
json_t *cli_json_vv(const kith_vv *vv);

/* Set obj[key] = val (taking val's reference); a NULL val means JSON null. Returns 0 or -1,
 * so that callers can OR the results and check once. */
int cli_jset(json_t *obj, const char *key, json_t *val);
/* Finish an object built with `bad |= cli_jset(o, ...)`: o, or NULL (o dropped) if bad. */
json_t *cli_json_done(json_t *o, int bad);
/* Print `j` on stdout (two-space indent, sorted keys, a trailing newline) and drop the
 * reference. Returns CLI_OK, or CLI_FAIL (with a message) if j is NULL or writing fails. */
int cli_json_print(const struct cli *c, json_t *j);
/* Print {"<key>": val} as cli_json_print does, taking val's reference (NULL: JSON null). */
int cli_json_print_in(const struct cli *c, const char *key, json_t *val);

/* Bold (header) and coloured text when colour is on; "" otherwise. */
const char *cli_sgr(bool on, const char *code);

/* ---- the commands (one file per group) ------------------------------------------------ */

int cmd_init(struct cli *c, int argc, char **argv);
int cmd_id(struct cli *c, int argc, char **argv);
int cmd_status(struct cli *c, int argc, char **argv);
int cmd_restored(struct cli *c, int argc, char **argv);
int cmd_forks(struct cli *c, int argc, char **argv);
int cmd_rekey(struct cli *c, int argc, char **argv);
int cmd_log(struct cli *c, int argc, char **argv);
int cmd_export(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);

int cmd_contact_add(struct cli *c, int argc, char **argv);
int cmd_contact_set(struct cli *c, int argc, char **argv);
int cmd_contact_tag(struct cli *c, int argc, char **argv);
int cmd_contact_rm(struct cli *c, int argc, char **argv);
int cmd_contact_ls(struct cli *c, int argc, char **argv);
int cmd_contact_show(struct cli *c, int argc, char **argv);

int cmd_interaction_add(struct cli *c, int argc, char **argv);
int cmd_interaction_ls(struct cli *c, int argc, char **argv);
int cmd_reminder_add(struct cli *c, int argc, char **argv);
int cmd_reminder_done(struct cli *c, int argc, char **argv);
int cmd_reminder_ls(struct cli *c, int argc, char **argv);

int cmd_conflicts(struct cli *c, int argc, char **argv);
int cmd_conflicts_restore(struct cli *c, int argc, char **argv);
int cmd_journal(struct cli *c, int argc, char **argv);
int cmd_journal_restore(struct cli *c, int argc, char **argv);

int cmd_schema_show(struct cli *c, int argc, char **argv);
int cmd_schema_apply(struct cli *c, int argc, char **argv);
int cmd_put(struct cli *c, int argc, char **argv);
int cmd_get(struct cli *c, int argc, char **argv);
int cmd_ls(struct cli *c, int argc, char **argv);
int cmd_rm(struct cli *c, int argc, char **argv);

int cmd_trust(struct cli *c, int argc, char **argv);
int cmd_peers(struct cli *c, int argc, char **argv);
int cmd_bundle_create(struct cli *c, int argc, char **argv);
int cmd_bundle_apply(struct cli *c, int argc, char **argv);
int cmd_serve(struct cli *c, int argc, char **argv);
int cmd_sync(struct cli *c, int argc, char **argv);
int cmd_watch(struct cli *c, int argc, char **argv);
int cmd_group(struct cli *c, int argc, char **argv);
int cmd_group_create(struct cli *c, int argc, char **argv);
int cmd_devices(struct cli *c, int argc, char **argv);
int cmd_invite(struct cli *c, int argc, char **argv);
int cmd_join(struct cli *c, int argc, char **argv);
int cmd_devices_rm(struct cli *c, int argc, char **argv);

/* The device group as JSON (group, status; spec/cli.md "group"), and as one line of text
 * without its newline ("home (ID), 3 members"). */
json_t *cli_group_json(const kith_group_info *g);
void cli_group_text(const kith_group_info *g, char *out, size_t cap);

/* A peer record as JSON (status, peers, trust --list; spec/cli.md "peer"). */
json_t *cli_peer_json(const kith_peer *p);
/* Held ops of one origin as JSON (status, bundle apply; spec/cli.md "hold"), and as one line
 * of text without its newline ("3 ops held: origin ID, clock 2 h 13 min ahead (...)"). */
json_t *cli_hold_json(const kith_hold *h);
void cli_hold_text(const kith_hold *h, char *out, size_t cap);
/* A fork record as JSON (status; spec/cli.md "fork"), and as one line of text without its
 * newline ("origin ID forked at seq S: peer P showed another history ..."). */
json_t *cli_fork_json(const kith_fork *f);
void cli_fork_text(const kith_fork *f, char *out, size_t cap);
/* A fork record's source as a word ("handshake", "batch", "proof"), and the branch of its
 * proof this replica holds ("winner", "loser", "neither"; NULL when no proof is held). In
 * cmd_forks.c. */
const char *cli_fork_source(int source);
const char *cli_fork_holds(const kith_fork *f);
/* The last re-key as JSON (status, rekey; spec/cli.md "rekeyed") and as text without its
 * newline ("OLD -> NEW (when): ..."); what to do when this replica's own origin lost a fork and
 * it has not re-keyed (NULL: nothing). In cmd_rekey.c. */
json_t *cli_rekey_json(const kith_rekey_info *ri);
void cli_rekey_text(const kith_rekey_info *ri, char *out, size_t cap);
const char *cli_rekey_advice(const kith_status *s);
/* Warn on stderr of the `n` forks recorded last (a sync or bundle just found them). */
void cli_warn_forks(const struct cli *c, kith_replica *r, uint64_t n);
/* A clock offset for people: "+20 s", "-1 s 250 ms", "0 ms". */
void cli_clock_text(int64_t ms, char out[40]);
/* A schema's version and digest (kith_schema_info, kith_peer) for people: "v3 1a2b3c4d", the
 * digest cut to 8 hex digits; "" when unknown (a zero digest). As JSON, into obj's
 * "schema_version" (a number) and "schema_digest" (64 hex), both null when unknown. Returns
 * nonzero when a JSON value could not be made. */
void cli_schema_text(uint64_t version, const uint8_t digest[KITH_HASH_BYTES], char out[32]);
int cli_schema_json(json_t *obj, uint64_t version, const uint8_t digest[KITH_HASH_BYTES]);

/* Shared by contact show and the lists: a document as a JSON object with "id" and every
 * field of its collection (null when unset; sets as sorted arrays). NULL on failure, with
 * the library's code in *rc. */
json_t *cli_doc_json(kith_txn *t, const char *collection, const kith_docid *doc, int *rc);

/* The elements of a set field, sorted (the iterator's byte order), as a JSON array; NULL on
 * failure, with the library's code in *rc. */
json_t *cli_set_json(kith_txn *t, const char *collection, const kith_docid *doc, const char *field,
                     int *rc);

/*
 * A document of any collection as a JSON object (docs.c): "id", every field it holds,
 * declared or not (kith_iter_fields: sets as arrays of their elements, counters as numbers,
 * flags as booleans, other values as cli_value_json gives them), and every field the
 * collection's declaration `cdecl` (may be NULL) names that it holds no value for: null for a
 * register, [] for a set, 0 for a counter, false for a flag. The document id takes the key
 * "id" whatever the fields are called. NULL on failure, with the library's code in *rc.
 */
json_t *cli_doc_all_json(kith_txn *t, const char *collection, json_t *cdecl, const kith_docid *doc,
                         int *rc);
/* A field's JSON value for people (docs.c; a heap string, NULL on OOM): strings as they are
 * with control characters as '?', numbers in decimal, booleans yes/no, arrays their elements
 * joined with ", ", null and [] "-". */
char *cli_json_text(json_t *v);

/* A field rendered for a table cell, and a set field's elements joined with ", " (""
 * when empty): heap strings the caller frees; NULL on failure. */
char *cli_field_text(kith_txn *t, const char *collection, const kith_docid *doc, const char *field);
char *cli_set_text(kith_txn *t, const char *collection, const kith_docid *doc, const char *field);

/* ---- the replica's declared schema (cmd_schema.c) --------------------------------------- */

/*
 * The replica's schema as kith_schema_json gives it (spec/data-model.md 2.4.5: sorted keys,
 * defaults left out, plus "version"), parsed: a new reference in *out the caller drops with
 * json_decref. On failure the problem is reported, CLI_FAIL returned and *out is NULL. The
 * library reads the schema in a transaction of its own: call this (and kith_value_parse_in)
 * before beginning one.
 */
int cli_decl_load(const struct cli *c, kith_replica *r, json_t **out);
/* A declared collection, its "fields" object, and one declared field; NULL when not declared.
 * Borrowed from the loaded schema. */
json_t *cli_decl_coll(json_t *schema, const char *collection);
json_t *cli_decl_fields(json_t *coll);
json_t *cli_decl_field(json_t *coll, const char *field);
/* A declared field's kind (kith_crdt; lww when the document names none; -1 if unknown) and
 * its type name as the document spells it ("string", "integer", ...). */
int cli_decl_kind(json_t *field);
const char *cli_decl_type(json_t *field);
/* "lww", "set", "counter", "flag" ("?" for anything else). */
const char *cli_kind_name(int kind);

#endif /* KITH_CLI_H */
