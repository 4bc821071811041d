/*
 * cmd_invite.c — `kith invite` and `kith join` (spec/cli.md CLI-27, CLI-28; include/kith.h
 * "Invites"). The code is the last line `kith invite` prints, so a script takes it with
 * `tail -n 1`, and a person reads it off the screen (or scans it: --qr draws it as a QR code
 * with Unicode half blocks, two rows of modules per line of text, via libqrencode).
 */
#include "cli.h"

#include <qrencode.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ADDRS 8
#define QR_QUIET 2 /* modules of light border around the code */

/*
 * Draw `text` as a QR code on stdout: light modules (and the border) as the foreground, so
 * that it reads as a QR code on a terminal with a dark background, as `qrencode -t UTF8`
 * draws it. An invite code's characters (0-9, A-Z, '-') are all in QR's alphanumeric set,
 * which libqrencode picks by itself for such runs (5.5 bits a character; the hint only says
 * how to encode other characters). 0, or -1 when it cannot be encoded.
 */
static int
draw_qr(const char *text)
{
    QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
    if (q == NULL)
        return -1;
    int w = q->width, side = w + 2 * QR_QUIET;
    for (int y = 0; y < side; y += 2) {
        for (int x = 0; x < side; x++) {
            bool top, bottom;
            int mx = x - QR_QUIET, my = y - QR_QUIET;
            top = mx < 0 || mx >= w || my < 0 || my >= w || !(q->data[my * w + mx] & 1);
            my++;
            bottom = y + 1 >= side || mx < 0 || mx >= w || my < 0 || my >= w ||
                     !(q->data[my * w + mx] & 1);
            if (y + 1 >= side)
                bottom = false; /* below the code: terminal background */
            fputs(top && bottom ? "\u2588" : top ? "\u2580" : bottom ? "\u2584" : " ", stdout);
        }
        putchar('\n');
    }
    QRcode_free(q);
    return 0;
}

int
cmd_invite(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"expires", required_argument, NULL, 'e'},
        {"addr", required_argument, NULL, 'a'},
        {"qr", no_argument, NULL, 'Q'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *addrs[MAX_ADDRS];
    kith_invite_opts io = {0};
    kith_replica *r = NULL;
    kith_group_info g;
    bool json = false, qr = false;
    char *code = NULL, until[32];
    int ch, rc, krc, ms;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'e':
            if (cli_parse_duration(optarg, &ms) < 0 || ms <= 0)
                return cli_usage_error(c, "--expires: '%s' is not a duration (10m, 1h, 90s)",
                                       optarg);
            io.expires_ms = ms;
            break;
        case 'a':
            if (io.naddrs == MAX_ADDRS)
                return cli_usage_error(c, "too many --addr options (at most %d)", MAX_ADDRS);
            addrs[io.naddrs++] = optarg;
            break;
        case 'Q':
            qr = true;
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (optind < argc)
        return cli_usage_error(c, "unexpected argument '%s'", argv[optind]);
    io.addrs = addrs;
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        return rc;
    if ((krc = kith_invite_create(r, &io, &code)) < 0) {
        rc = cli_fail_rc(c, r, NULL, krc);
        goto out_close;
    }
    if ((krc = kith_group_get(r, &g)) < 0) {
        rc = cli_fail_rc(c, r, "reading the group", krc);
        goto out_free;
    }
    /* as the library stamps it: now plus the lifetime, up to the whole second */
    int64_t expires_ms = ((int64_t)time(NULL) * 1000 +
                          (io.expires_ms ? io.expires_ms : KITH_INVITE_EXPIRES_MS) + 999) /
                         1000 * 1000;
    cli_time(expires_ms, until);
    if (json) {
        json_t *o = json_object();
        int bad = o == NULL;
        bad |= cli_jset(o, "code", json_string(code));
        bad |= cli_jset(o, "expires", cli_json_time(expires_ms));
        bad |= cli_jset(o, "group", cli_group_json(&g));
        rc = cli_json_print(c, cli_json_done(o, bad));
        goto out_free;
    }
    printf("invite to group %s (%s), good once until %s; on the new device run:\n", g.name, g.id,
           until);
    printf("  kith join %s\n", code);
    if (qr && draw_qr(code) < 0)
        fprintf(stderr, "kith: invite: the code does not fit a QR code; type it instead\n");
    printf("%s\n", code);
out_free:
    kith_free(code);
out_close:
    kith_close(r);
    return rc;
}

int
cmd_join(struct cli *c, int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, NULL, 'n'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *name = NULL;
    kith_join_info info;
    kith_replica *r = NULL;
    bool json = false;
    char inviter[KITH_ID_HEX + 1];
    int ch, rc, krc, timeout_ms = 10000;

    while ((ch = cli_getopt(c, argc, argv, ":h", opts)) != -1) {
        switch (ch) {
        case 'n':
            name = optarg;
            break;
        case 't':
            if (cli_parse_duration(optarg, &timeout_ms) < 0)
                return cli_usage_error(c, "--timeout: '%s' is not a duration (10s, 500ms)", optarg);
            break;
        case 'j':
            json = true;
            break;
        default:
            return cli_opt_other(c, ch);
        }
    }
    if (argc - optind < 1)
        return cli_usage_error(c, "missing CODE");
    /* a code pasted with its spaces arrives as several words: they are one code */
    size_t len = 0;
    for (int i = optind; i < argc; i++)
        len += strlen(argv[i]) + 1;
    char *code = malloc(len + 1);
    if (code == NULL)
        return cli_fail(c, "out of memory");
    size_t at = 0;
    for (int i = optind; i < argc; i++) {
        size_t n = strlen(argv[i]);
        memcpy(code + at, argv[i], n);
        at += n;
        code[at++] = ' ';
    }
    code[at] = '\0';
    if ((rc = cli_open(c, CLI_WRITE, &r)) != CLI_OK)
        goto out_free;
    krc = kith_join(r, code, name, timeout_ms, &info);
    if (krc < 0 && info.group_id[0] == '\0') {
        rc = cli_fail_rc(c, r, NULL, krc);
        goto out_close;
    }
    cli_id_hex(info.inviter_id, inviter);
    if (krc < 0) /* joined, but the first sync failed: the daemon syncs later */
        fprintf(stderr, "kith: join: joined group %s, but the first sync with %s failed: %s\n",
                info.group_id, inviter, kith_errmsg(r));
    if (json) {
        json_t *o = json_object();
        int bad = o == NULL;
        bad |= cli_jset(o, "group", json_string(info.group_id));
        bad |= cli_jset(o, "inviter", json_string(inviter));
        bad |= cli_jset(o, "endpoint", json_string(info.endpoint));
        bad |= cli_jset(o, "synced", json_boolean(krc == 0));
        bad |= cli_jset(o, "ops_received", json_integer((json_int_t)info.sync.ops_received));
        bad |= cli_jset(o, "ops_sent", json_integer((json_int_t)info.sync.ops_sent));
        rc = cli_json_print(c, cli_json_done(o, bad));
    } else {
        printf("joined group %s through %s at %s", info.group_id, inviter, info.endpoint);
        if (krc == 0)
            printf("; synced: received %llu ops, sent %llu\n",
                   (unsigned long long)info.sync.ops_received,
                   (unsigned long long)info.sync.ops_sent);
        else
            printf("; not synced yet\n");
    }
    if (rc == CLI_OK && krc < 0)
        rc = CLI_FAIL;
out_close:
    kith_close(r);
out_free:
    free(code);
    return rc;
}
