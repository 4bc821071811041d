/*
 * main.c — the `kith` command: global options, the table of subcommands, and where the
 * replica lives.
 *
 * Parsing follows git and ip: the global optstring starts with '+', so getopt_long stops at
 * the first word that is not an option (the command); the command's words pick a row of
 * `commands`, and its function parses the rest with its own getopt_long table after optind is
 * reset. The table is also what `kith help` prints, so the two cannot disagree. The replica
 * directory is --dir, else $KITH_DIR, else $XDG_DATA_HOME/kith, else ~/.local/share/kith
 * (spec/cli.md "Replica directory").
 */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const struct cli_command commands[] = {
    {"init", NULL, cmd_init, "init [--json]",
     "create the replica and its key pair; print id and key"},
    {"id", NULL, cmd_id, "id [--json]", "this replica's id and public key"},
    {"contact", "add", cmd_contact_add,
     "contact add --name N [--email E] [--phone P] [--company C] [--notes T] [--birthday D] "
     "[--tag T]...",
     "add a contact; prints its id"},
    {"contact", "set", cmd_contact_set, "contact set ID FIELD=VALUE...",
     "change fields (an empty VALUE clears an optional field)"},
    {"contact", "tag", cmd_contact_tag, "contact tag ID +TAG|-TAG...", "add and remove tags"},
    {"contact", "rm", cmd_contact_rm, "contact rm ID", "delete a contact"},
    {"contact", "ls", cmd_contact_ls, "contact ls [--json]", "list contacts by name"},
    {"contact", "show", cmd_contact_show, "contact show ID [--json]", "one contact in full"},
    {"interaction", "add", cmd_interaction_add,
     "interaction add CONTACT --kind K [--at TIME] [--summary S] [--with CONTACT]...",
     "record a call, meeting, message, email or note"},
    {"interaction", "ls", cmd_interaction_ls, "interaction ls [--contact ID] [--json]",
     "list interactions by time"},
    {"reminder", "add", cmd_reminder_add, "reminder add CONTACT --due TIME --text S",
     "add a reminder; prints its id"},
    {"reminder", "done", cmd_reminder_done, "reminder done ID", "mark a reminder done"},
    {"reminder", "ls", cmd_reminder_ls, "reminder ls [--due-before TIME] [--json]",
     "list reminders by due time"},
    {"schema", "show", cmd_schema_show, "schema show [--json]",
     "the declared collections, fields and indexes, with the version and digest"},
    {"schema", "apply", cmd_schema_apply, "schema apply FILE",
     "declare or extend the schema from a JSON document (FILE, or - for stdin)"},
    {"put", NULL, cmd_put, "put COLL [ID] FIELD=VALUE|FIELD+=VALUE|FIELD-=VALUE...",
     "create a document (prints its id) or change document ID of any declared collection"},
    {"get", NULL, cmd_get, "get COLL ID [--json]", "one document: every field it holds"},
    {"ls", NULL, cmd_ls, "ls COLL [--index NAME [--eq V] [--from V] [--to V]] [--limit N] [--json]",
     "list a collection's documents, by id or through an index"},
    {"rm", NULL, cmd_rm, "rm COLL ID", "delete a document"},
    {"status", NULL, cmd_status, "status [--json]",
     "id, version vector, documents, open conflicts, pending ops"},
    {"restored", NULL, cmd_restored, "restored [--accept] [--json]",
     "was this replica restored from a copy? --accept: write on without its newer ops"},
    {"forks", NULL, cmd_forks, "forks [--json]",
     "origins that signed two histories: where, how it was seen, the proof, the winner"},
    {"rekey", NULL, cmd_rekey, "rekey [--json]",
     "take a new key: the old one admits it to the group; edits that lost a fork of this "
     "replica's own key are written again under it"},
    {"log", NULL, cmd_log, "log [--origin ID] [--limit N] [--json]", "the signed op log"},
    {"conflicts", NULL, cmd_conflicts, "conflicts [--all] [--json]",
     "recorded conflicts: field, winner, loser, both values, when"},
    {"conflicts", "restore", cmd_conflicts_restore, "conflicts restore ID",
     "make the losing value current again (a new write)"},
    {"journal", NULL, cmd_journal, "journal [--origin ID] [--json]",
     "ops a fork's resolution set aside: what they did, when, whether restored"},
    {"journal", "restore", cmd_journal_restore, "journal restore ORIGIN:SEQ | --all",
     "write a set-aside commit's ops again, as new writes of this replica"},
    {"export", NULL, cmd_export, "export", "the replicated state as canonical JSON"},
    {"trust", NULL, cmd_trust,
     "trust PUBKEY [--name N] [--addr ENDPOINT] | trust --list [--json] | trust --remove ID",
     "accept ops signed by that replica; --list shows the trust set; --remove revokes"},
    {"bundle", "create", cmd_bundle_create, "bundle create [-o FILE] [--since VV] [--quiet]",
     "write a file of signed ops (all, or those VV lacks); Ctrl-C writes none (exit 130)"},
    {"bundle", "apply", cmd_bundle_apply, "bundle apply FILE [--json] [--quiet]",
     "verify and merge a bundle; Ctrl-C applies none of it (exit 130)"},
    {"verify", NULL, cmd_verify, "verify [--json] [--quiet]",
     "re-check chains, signatures and indexes; exit 1 on damage, 130 on Ctrl-C"},
    {"serve", NULL, cmd_serve,
     "serve [--listen EP] [--peer EP]... [--interval 30s] [--failing-after N] [--discover] "
     "[--log-json] [-v]",
     "run the sync daemon in the foreground"},
    {"sync", NULL, cmd_sync, "sync ENDPOINT [--timeout 10s] [--json] [--quiet]",
     "one sync session with a peer; exit 0 when both hold the same ops; Ctrl-C keeps the "
     "whole batches (exit 130)"},
    {"peers", NULL, cmd_peers, "peers [--json]",
     "known peers: address, trust, pending ops, last sync, last error"},
    {"group", NULL, cmd_group, "group [--json]", "this replica's device group: name, id, members"},
    {"group", "create", cmd_group_create, "group create NAME [--device-name N] [--json]",
     "found a device group with this replica as its first member"},
    {"invite", NULL, cmd_invite, "invite [--expires 10m] [--addr ENDPOINT]... [--qr] [--json]",
     "make a one-time code for a new device to join this replica's group (the last line)"},
    {"join", NULL, cmd_join, "join CODE [--name DEVICE] [--timeout 10s] [--json]",
     "join the group of the device that made CODE, then sync with it"},
    {"devices", NULL, cmd_devices, "devices [--json]",
     "the group's devices: name, id, added by whom and when, last seen, removed"},
    {"devices", "rm", cmd_devices_rm, "devices rm ID",
     "remove a device from the group: its later ops are refused everywhere"},
    {"watch", NULL, cmd_watch, "watch [--since CURSOR|now] [--json] [--no-follow]",
     "print each commit applied from now (or after CURSOR), by any process, until ^C"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
print_help(FILE *f)
{
    fprintf(f, "usage: kith [--dir DIR] COMMAND [ARGS]\n\n"
               "The replica lives in DIR, else $KITH_DIR, else $XDG_DATA_HOME/kith\n"
               "(~/.local/share/kith). Exit status: 0 ok, 1 failure, 2 usage error.\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  kith %s\n      %s\n", commands[i].usage, commands[i].summary);
    fprintf(f,
            "\nbundle create, bundle apply, sync and verify show a progress line on stderr when\n"
            "it is a terminal (not with --json or --quiet), and stop cleanly on Ctrl-C.\n"
            "kith help COMMAND (or kith COMMAND --help) prints one command's usage;\n"
            "man kith has the rest.\n");
}

/* The rows of one group ("contact"), each with its usage and what it does. */
static void
print_group_help(FILE *f, const char *group)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].group, group) == 0)
            fprintf(f, "usage: kith %s\n      %s\n", commands[i].usage, commands[i].summary);
}

/* Edit distance between a and b (insertions, deletions, substitutions, and swaps of two
 * neighbours), as git uses to suggest a command for a typo; stops counting past 9. */
static size_t
distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), d[17][17];
    if (la > 16 || lb > 16)
        return 10;
    for (size_t i = 0; i <= la; i++)
        d[i][0] = i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

/* The command word (group NULL) or the subcommand of `group` nearest to `word`, if it is
 * near enough to be a typo of it (or `word` begins it); NULL if none is. */
static const char *
closest(const char *group, const char *word)
{
    const char *best = NULL;
    size_t best_d = 3; /* a typo is at most two edits away */
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const char *cand = group == NULL ? commands[i].group : commands[i].sub;
        if (cand == NULL || (group != NULL && strcmp(commands[i].group, group) != 0))
            continue;
        size_t d =
            strncmp(cand, word, strlen(word)) == 0 && word[0] != '\0' ? 1 : distance(word, cand);
        if (d < best_d || (d == best_d && best != NULL && strcmp(cand, best) < 0)) {
            best = cand;
            best_d = d;
        }
    }
    return best;
}

static bool
is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* `kith help [COMMAND [SUBCOMMAND]]`. */
static int
help(struct cli *c, int argc, char **argv)
{
    bool known = false;
    if (argc == 0) {
        print_help(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].group, argv[0]) != 0)
            continue;
        known = true;
        if (argc > 1 && commands[i].sub != NULL && strcmp(commands[i].sub, argv[1]) == 0) {
            c->usage = commands[i].usage;
            c->summary = commands[i].summary;
            return cli_help(c);
        }
    }
    if (!known) {
        const char *near = closest(NULL, argv[0]);
        return near ? cli_usage_error(c, "no command '%s'; did you mean '%s'?", argv[0], near)
                    : cli_usage_error(c, "no command '%s'", argv[0]);
    }
    if (argc > 1) {
        const char *near = closest(argv[0], argv[1]);
        if (near == NULL || !strcmp(near, argv[1]))
            return cli_usage_error(c, "no command '%s %s'", argv[0], argv[1]);
        return cli_usage_error(c, "no command '%s %s'; did you mean '%s %s'?", argv[0], argv[1],
                               argv[0], near);
    }
    print_group_help(stdout, argv[0]);
    return CLI_OK;
}

/* The default replica directory, into buf; NULL when neither XDG_DATA_HOME nor HOME is set. */
static const char *
default_dir(char *buf, size_t cap)
{
    const char *env = getenv("KITH_DIR");
    int n;
    if (env != NULL && env[0] != '\0')
        return env;
    env = getenv("XDG_DATA_HOME");
    if (env != NULL && env[0] == '/')
        n = snprintf(buf, cap, "%s/kith", env);
    else if ((env = getenv("HOME")) != NULL && env[0] != '\0')
        n = snprintf(buf, cap, "%s/.local/share/kith", env);
    else
        return NULL;
    return n > 0 && (size_t)n < cap ? buf : NULL;
}

/* Create the parents of `path` (mode 0700, like the XDG base directories), as `mkdir -p`
 * would; the replica directory itself is kith_open's to make. 0 or -errno. */
static int
make_parents(const char *path)
{
    char buf[4096];
    size_t len = strlen(path);
    if (len >= sizeof buf)
        return -ENAMETOOLONG;
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';
    for (size_t i = 1; i < len; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
            int e = errno;
            buf[i] = '/';
            return -e;
        }
        buf[i] = '/';
    }
    return 0;
}

/* Warn when DIR/key, the secret key (mode 0600 per kith.h), is readable by other users. */
static void
key_mode_warn(const struct cli *c)
{
    char path[4096];
    struct stat st;

    if ((size_t)snprintf(path, sizeof path, "%s/key", c->dir) >= sizeof path ||
        stat(path, &st) != 0 || (st.st_mode & (S_IRGRP | S_IROTH)) == 0)
        return;
    fprintf(stderr,
            "kith: warning: %s is readable by other users (mode %04o); run 'chmod 600 %s'\n", path,
            (unsigned)(st.st_mode & 07777), path);
}

int
cli_open(const struct cli *c, enum cli_open_mode mode, kith_replica **out)
{
    unsigned flags = mode == CLI_CREATE ? KITH_CREATE : mode == CLI_READ ? KITH_RDONLY : 0;
    const char *detail;
    int rc;
    *out = NULL;
    if (mode != CLI_CREATE && access(c->dir, F_OK) != 0 && errno == ENOENT)
        return cli_fail(c, "no replica in %s (run 'kith init' first)", c->dir);
    if (mode == CLI_CREATE && (rc = make_parents(c->dir)) < 0)
        return cli_fail(c, "%s: %s", c->dir, kith_strerror(rc));
    rc = kith_open(c->dir, flags, out);
    detail = kith_errmsg(NULL); /* why the open failed, when the library knows more */
    if (rc == KITH_ENOTFOUND)
        return cli_fail(c, "no replica in %s (run 'kith init' %s)", c->dir,
                        detail[0] != '\0' ? "to finish it" : "first");
    if (rc < 0 && detail[0] != '\0')
        return cli_fail(c, "%s", detail);
    if (rc < 0)
        return cli_fail(c, "%s: %s", c->dir, kith_strerror(rc));
    key_mode_warn(c);
    /* A new replica gets the built-in schema, the CLI's default: the app it serves is the
     * CRM unless told otherwise (kith schema apply). Declaring it again changes nothing. */
    if (mode == CLI_CREATE &&
        (rc = kith_schema_apply(*out, kith_schema_crm(), strlen(kith_schema_crm()))) < 0) {
        rc = cli_fail(c, "declaring the built-in schema: %s", kith_errmsg(*out));
        kith_close(*out);
        *out = NULL;
        return rc;
    }
    return CLI_OK;
}

static bool
color_ok(int fd)
{
    const char *nc = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    if (nc != NULL && nc[0] != '\0')
        return false;
    if (term != NULL && strcmp(term, "dumb") == 0)
        return false;
    return isatty(fd) == 1;
}

/* Run the command here; its exit status. */
static int
run_command(struct cli *c, const struct cli_command *cmd, int argc, char **argv)
{
    int ch = cmd->fn(c, argc, argv);
    if (fflush(stdout) != 0 && ch == CLI_OK)
        ch = cli_fail(c, "writing output: %s", strerror(errno));
    return ch;
}

/* The child running the command, for forward_sigint. */
static volatile pid_t child_pid;

static void
forward_sigint(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

/*
 * Run the command in a child process and pass on its exit status. LMDB reads the replica
 * through a map: a page overwritten with garbage can send it past the end of the file or of
 * the map (SIGBUS, SIGSEGV) before any check of kith's sees it. Then the child dies and this
 * process says so, with exit 1, instead of the user seeing a core dump (spec/cli.md CLI-12).
 * Streams are inherited, so output and stdin behave as if run here. Without fork, run here.
 *
 * A SIGINT to this process is passed on to the child and this one waits: a long command
 * stops cleanly and exits 130 (CLI-22), and any other dies of it, which is then re-raised
 * here. SIGINT is blocked across the fork, so one that comes meanwhile is passed on too.
 */
static int
run_in_child(struct cli *c, const struct cli_command *cmd, int argc, char **argv)
{
    struct sigaction old, sa;
    sigset_t block, mask;
    pid_t pid;
    int st, sig;
    bool forward;

    fflush(stdout);
    fflush(stderr);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &mask);
    pid = fork();
    if (pid <= 0) {
        sigprocmask(SIG_SETMASK, &mask, NULL);
        if (pid < 0)
            return run_command(c, cmd, argc, argv);
        exit(run_command(c, cmd, argc, argv));
    }
    /* left alone when ignored: whoever started kith wants neither to see it */
    forward = sigaction(SIGINT, NULL, &old) == 0 && old.sa_handler != SIG_IGN;
    if (forward) {
        child_pid = pid;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = forward_sigint;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGINT, &sa, NULL);
    }
    sigprocmask(SIG_SETMASK, &mask, NULL);
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return cli_fail(c, "waiting for the command: %s", strerror(errno));
    if (forward)
        sigaction(SIGINT, &old, NULL);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    sig = WTERMSIG(st);
    if (sig != SIGBUS && sig != SIGSEGV && sig != SIGABRT) {
        signal(sig, SIG_DFL);
        raise(sig); /* stopped from outside (^C, a closed pipe, kill): stop the same way */
        return cli_fail(c, "stopped by signal %d", sig);
    }
    return cli_fail(c, "replica is damaged: reading %s raised %s%s", c->dir,
                    sig == SIGBUS    ? "SIGBUS"
                    : sig == SIGSEGV ? "SIGSEGV"
                                     : "SIGABRT",
                    strcmp(c->name, "verify") == 0 ? "" : "; run 'kith verify' for details");
}

int
main(int argc, char **argv)
{
    static const struct option global_opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    struct cli c = {0};
    char dirbuf[4096];
    const char *dir = NULL;
    const struct cli_command *cmd = NULL;
    bool group_known = false;
    char name[64];
    int ch, rest;

    c.color_out = color_ok(STDOUT_FILENO);
    c.color_err = color_ok(STDERR_FILENO);
    cli_opt_reset();
    while ((ch = cli_getopt(&c, argc, argv, "+:hV", global_opts)) != -1) {
        switch (ch) {
        case 'd':
            if (optarg[0] == '\0')
                return cli_usage_error(&c, "--dir: empty directory name");
            dir = optarg;
            break;
        case 'h':
            print_help(stdout);
            return CLI_OK;
        case 'V':
            printf("kith %s (library %s)\n", KITH_VERSION_STRING, kith_version());
            return CLI_OK;
        default:
            return CLI_USAGE;
        }
    }
    if (optind >= argc)
        return cli_usage_error(&c, "no command given");
    if (strcmp(argv[optind], "help") == 0)
        return help(&c, argc - optind - 1, argv + optind + 1);

    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].group, argv[optind]) != 0)
            continue;
        group_known = true;
        if (commands[i].sub == NULL) {
            if (cmd == NULL)
                cmd = &commands[i];
        } else if (optind + 1 < argc && strcmp(commands[i].sub, argv[optind + 1]) == 0) {
            cmd = &commands[i];
            break;
        }
    }
    if (cmd == NULL) {
        const char *word = argv[optind], *next = optind + 1 < argc ? argv[optind + 1] : NULL;
        if (!group_known) {
            const char *near = closest(NULL, word);
            return near
                       ? cli_usage_error(&c, "unknown command '%s'; did you mean '%s'?", word, near)
                       : cli_usage_error(&c, "unknown command '%s'", word);
        }
        if (next != NULL && is_help(next)) { /* kith contact --help */
            print_group_help(stdout, word);
            return CLI_OK;
        }
        if (next == NULL) {
            fprintf(stderr, "kith: %s: missing subcommand\n", word);
        } else {
            const char *near = closest(word, next);
            if (near != NULL)
                fprintf(stderr, "kith: %s: unknown subcommand '%s'; did you mean '%s %s'?\n", word,
                        next, word, near);
            else
                fprintf(stderr, "kith: %s: unknown subcommand '%s'\n", word, next);
        }
        print_group_help(stderr, word);
        return CLI_USAGE;
    }

    snprintf(name, sizeof name, "%s%s%s", cmd->group, cmd->sub ? " " : "",
             cmd->sub ? cmd->sub : "");
    c.name = name;
    c.usage = cmd->usage;
    c.summary = cmd->summary;
    if (dir == NULL)
        dir = default_dir(dirbuf, sizeof dirbuf);
    if (dir == NULL)
        return cli_fail(&c, "no replica directory: use --dir, or set KITH_DIR or HOME");
    c.dir = dir;

    /* The command's argv starts at its last command word, as getopt expects argv[0]. */
    rest = optind + (cmd->sub != NULL ? 1 : 0);
    cli_opt_reset();
    if (strcmp(cmd->group, "serve") == 0 || strcmp(cmd->group, "sync") == 0 ||
        strcmp(cmd->group, "watch") == 0)
        return run_command(&c, cmd, argc - rest, argv + rest); /* they handle SIGTERM/SIGINT */
    return run_in_child(&c, cmd, argc - rest, argv + rest);
}
