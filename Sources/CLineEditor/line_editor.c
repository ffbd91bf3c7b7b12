// libedit glue for sdshell's interactive prompt (see line_editor.h).
//
// The editor works on wide characters (el_wgets, el_wline, el_winsertstr) and converts to and from
// UTF-8 itself, so that what Swift sees doesn't depend on how libedit's own conversions behave.
// libedit still needs a UTF-8 LC_CTYPE to decode the terminal's input bytes, hence le_create's
// setlocale.
#define _GNU_SOURCE
#include "line_editor.h"

#include <histedit.h>

#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

struct le_editor {
    EditLine *el;
    History *hist;
    char *prompt;             // what the prompt function shows (UTF-8)
    le_complete_fn complete;
    void *context;
    int interrupted;          // Ctrl-C seen during the current read
    int suspend_ignored;      // SIGTSTP was ignored when the current read started
    char *line;               // the last line read, UTF-8
};

// MARK: - UTF-8 <-> wchar_t (UCS-4 on Linux)

static char *utf8_from_wide(const wchar_t *s, size_t n) {
    char *out = malloc(n * 4 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = (uint32_t)s[i];
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) c = 0xFFFD;
        if (c < 0x80) {
            out[o++] = (char)c;
        } else if (c < 0x800) {
            out[o++] = (char)(0xC0 | (c >> 6));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else if (c < 0x10000) {
            out[o++] = (char)(0xE0 | (c >> 12));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        } else {
            out[o++] = (char)(0xF0 | (c >> 18));
            out[o++] = (char)(0x80 | ((c >> 12) & 0x3F));
            out[o++] = (char)(0x80 | ((c >> 6) & 0x3F));
            out[o++] = (char)(0x80 | (c & 0x3F));
        }
    }
    out[o] = '\0';
    return out;
}

/// Decodes UTF-8 (invalid bytes become U+FFFD) into a NUL-terminated wide string; `*count` gets its length.
static wchar_t *wide_from_utf8(const char *s, size_t *count) {
    size_t len = strlen(s);
    wchar_t *out = malloc((len + 1) * sizeof(wchar_t));
    if (!out) return NULL;
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        uint32_t c = *p;
        int extra = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (extra < 0 || (size_t)(end - p) <= (size_t)extra) {
            out[o++] = 0xFFFD;
            p++;
            continue;
        }
        c = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
        int ok = 1;
        for (int k = 1; k <= extra; k++) {
            if ((p[k] & 0xC0) != 0x80) { ok = 0; break; }
            c = (c << 6) | (p[k] & 0x3F);
        }
        if (!ok) {
            out[o++] = 0xFFFD;
            p++;
            continue;
        }
        if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) c = 0xFFFD;
        out[o++] = (wchar_t)c;
        p += extra + 1;
    }
    out[o] = L'\0';
    if (count) *count = o;
    return out;
}

// MARK: - Locale

static int codeset_is_utf8(void) {
    const char *cs = nl_langinfo(CODESET);
    return cs && (strcasecmp(cs, "UTF-8") == 0 || strcasecmp(cs, "utf8") == 0);
}

/// libedit decodes input with mbrtowc, which only understands UTF-8 in a UTF-8 locale (in the "C"
/// locale, which a Swift program starts in, non-ASCII bytes are dropped).
static void ensure_utf8_ctype(void) {
    if (codeset_is_utf8()) return;
    if (setlocale(LC_CTYPE, "") && codeset_is_utf8()) return;
    if (setlocale(LC_CTYPE, "C.UTF-8") && codeset_is_utf8()) return;
    setlocale(LC_CTYPE, "C.utf8");
}

// MARK: - Callbacks

static le_editor *editor_of(EditLine *el) {
    void *data = NULL;
    el_get(el, EL_CLIENTDATA, &data);
    return data;
}

static char *prompt_function(EditLine *el) {
    le_editor *ed = editor_of(el);
    return ed && ed->prompt ? ed->prompt : "";
}

/// Advances a simulated cursor the way libedit's refresh code (re_putc) places a character of
/// display width `w` on a terminal `cols` wide: a wide character that doesn't fit is moved to the
/// next row, and reaching the right margin starts the next row.
static void sim_put(int *h, int *v, int w, int cols) {
    if (w < 0) w = 0;
    while (w > 0 && *h + w > cols) {
        (*h)++;
        if (*h >= cols) { *h = 0; (*v)++; }
    }
    *h += w;
    if (*h >= cols) { *h = 0; (*v)++; }
}

static void sim_addc(int *h, int *v, wchar_t c, int cols) {
    if (c == L'\t') {
        do sim_put(h, v, 1, cols); while ((*h & 7) != 0);
    } else if (c == L'\n') {
        *h = 0;
        (*v)++;
    } else if (iswprint((wint_t)c)) {
        sim_put(h, v, wcwidth(c), cols);
    } else if (c < 0x20 || c == 0x7F) {
        sim_put(h, v, 1, cols);    // shown as ^X
        sim_put(h, v, 1, cols);
    } else {
        sim_put(h, v, 1, cols);    // approximation for other non-printables
    }
}

/// The rows (counted from the prompt's row) of the cursor and of the end of the line as libedit
/// has drawn them: where its redisplay expects the terminal's cursor to be.
static void line_geometry(le_editor *ed, const LineInfoW *li, int cols, int *cursor_row, int *last_row) {
    int h = 0, v = 0;
    size_t plen = 0;
    wchar_t *prompt = wide_from_utf8(ed->prompt ? ed->prompt : "", &plen);
    if (prompt) {
        for (size_t i = 0; i < plen; i++) sim_put(&h, &v, iswprint((wint_t)prompt[i]) ? wcwidth(prompt[i]) : 0, cols);
        free(prompt);
    }
    *cursor_row = -1;
    for (const wchar_t *p = li->buffer; p < li->lastchar; p++) {
        if (p == li->cursor) {
            *cursor_row = v;
            int w = wcwidth(*p);
            if (w > 1 && h + w > cols) *cursor_row = v + 1;
        }
        sim_addc(&h, &v, *p, cols);
    }
    if (*cursor_row < 0) *cursor_row = v;
    *last_row = v;
}

static void put_newlines(FILE *out, int n) {
    for (int i = 0; i < n; i++) fputs("\r\n", out);
}

/// Tab: asks Swift what to do with the text before the cursor, then edits the line and/or lists
/// the candidates below it.
static unsigned char complete_function(EditLine *el, int ch) {
    (void)ch;
    le_editor *ed = editor_of(el);
    if (!ed || !ed->complete) return CC_ERROR;
    const LineInfoW *li = el_wline(el);
    char *before = utf8_from_wide(li->buffer, (size_t)(li->cursor - li->buffer));
    if (!before) return CC_ERROR;
    int cols = 0;
    if (el_get(el, EL_GETTC, "co", &cols) != 0 || cols <= 0) cols = 80;

    le_completion_action action;
    memset(&action, 0, sizeof action);
    ed->complete(ed->context, before, cols, &action);
    free(before);

    int cursor_row = 0, last_row = 0;
    if (action.listing) line_geometry(ed, li, cols, &cursor_row, &last_row);

    unsigned char result = CC_REFRESH;
    int available = (int)(li->cursor - li->buffer);
    int del = action.delete_count < available ? action.delete_count : available;
    if (del > 0) el_deletestr(el, del);
    if (action.insert && action.insert[0]) {
        size_t n = 0;
        wchar_t *w = wide_from_utf8(action.insert, &n);
        if (!w || el_winsertstr(el, w) != 0) result = CC_ERROR;
        free(w);
    }
    if (action.listing) {
        // Print below the whole (possibly wrapped) line, then leave the terminal's cursor as many
        // rows below the listing as libedit believes it is below the prompt's row: CC_REDISPLAY
        // clears the rows it thinks the line occupies, relative to that belief, before it redraws
        // the prompt and line starting at its (believed) row 0, i.e. just below the listing.
        FILE *out = stdout;
        fflush(out);
        put_newlines(out, last_row - cursor_row + 1);
        for (const char *p = action.listing; *p; p++) {
            if (*p == '\n') fputs("\r\n", out);
            else fputc(*p, out);
        }
        fputs("\r\n", out);
        put_newlines(out, cursor_row);
        fflush(out);
        result = CC_REDISPLAY;
    } else if (action.beep && result == CC_REFRESH) {
        result = CC_REFRESH_BEEP;
    }
    free(action.insert);
    free(action.listing);
    return result;
}

/// Ctrl-C (ISIG is off while editing, so it arrives as a key): shows "^C" at the end of the line,
/// then ends the read. It runs twice: the first time it moves to the end, appends "^C" and has the
/// line redrawn, pushing another ^C; that one (second run) returns CC_EOF, so el_gets returns NULL
/// with the cursor left after the "^C".
static unsigned char interrupt_function(EditLine *el, int ch) {
    (void)ch;
    le_editor *ed = editor_of(el);
    if (!ed) return CC_EOF;
    if (ed->interrupted) return CC_EOF;
    ed->interrupted = 1;
    const LineInfoW *li = el_wline(el);
    el_cursor(el, (int)(li->lastchar - li->cursor));
    el_winsertstr(el, L"^C");
    el_push(el, "\003");
    return CC_REFRESH;
}

/// Ctrl-Z: with ISIG off the terminal doesn't raise SIGTSTP itself, so do it (for the whole
/// process group, as the terminal would), unless SIGTSTP was ignored when the read started.
/// libedit's own handlers (EL_SIGNAL) only work once per el_gets (each restores the caller's
/// action when it runs), so this does their job itself: normal terminal mode while stopped, edit
/// mode again and a full redraw (on the row the cursor is on after `fg`) when continued.
static unsigned char suspend_function(EditLine *el, int ch) {
    (void)ch;
    le_editor *ed = editor_of(el);
    if (ed && ed->suspend_ignored) return CC_ERROR;
    struct sigaction stop, saved;
    memset(&stop, 0, sizeof stop);
    stop.sa_handler = SIG_DFL;
    sigemptyset(&stop.sa_mask);
    el_set(el, EL_PREP_TERM, 0);
    fflush(stdout);
    sigaction(SIGTSTP, &stop, &saved);
    kill(0, SIGTSTP);                  // stops here until SIGCONT
    sigaction(SIGTSTP, &saved, NULL);
    el_set(el, EL_PREP_TERM, 1);
    return CC_REDISPLAY;
}

// MARK: - API

int le_is_interactive(void) {
    return isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
}

le_editor *le_create(const char *program, int history_size, le_complete_fn complete, void *context) {
    if (!le_is_interactive()) return NULL;
    ensure_utf8_ctype();

    le_editor *ed = calloc(1, sizeof *ed);
    if (!ed) return NULL;
    ed->complete = complete;
    ed->context = context;
    ed->prompt = strdup("");

    HistEvent ev;
    ed->hist = history_init();
    if (!ed->hist) { le_destroy(ed); return NULL; }
    history(ed->hist, &ev, H_SETSIZE, history_size > 0 ? history_size : 1);
    history(ed->hist, &ev, H_SETUNIQUE, 1);

    ed->el = el_init(program ? program : "sdshell", stdin, stdout, stderr);
    if (!ed->el) { le_destroy(ed); return NULL; }
    EditLine *el = ed->el;
    el_set(el, EL_CLIENTDATA, (void *)ed);
    el_set(el, EL_EDITOR, "emacs");
    el_set(el, EL_SIGNAL, 1);
    el_set(el, EL_PROMPT, prompt_function);
    el_set(el, EL_HIST, history, ed->hist);
    // Ctrl-C must reach the editor as a key, not as SIGINT: turn ISIG off in edit mode only. libedit
    // restores the terminal's own settings (ISIG on) when el_gets returns.
    el_set(el, EL_SETTY, "-d", "-isig", NULL);
    el_set(el, EL_ADDFN, "sd-complete", "Complete the word before the cursor", complete_function);
    el_set(el, EL_ADDFN, "sd-interrupt", "Abandon the line being edited", interrupt_function);
    el_set(el, EL_ADDFN, "sd-suspend", "Suspend the program (SIGTSTP)", suspend_function);
    el_set(el, EL_BIND, "^I", "sd-complete", NULL);
    el_set(el, EL_BIND, "^C", "sd-interrupt", NULL);
    el_set(el, EL_BIND, "^Z", "sd-suspend", NULL);
    el_set(el, EL_BIND, "^R", "em-inc-search-prev", NULL);
    // The user's ~/.editrc (or $EDITRC) last, so that it can change any of this.
    el_source(el, NULL);
    return ed;
}

void le_destroy(le_editor *ed) {
    if (!ed) return;
    if (ed->el) el_end(ed->el);
    if (ed->hist) history_end(ed->hist);
    free(ed->prompt);
    free(ed->line);
    free(ed);
}

/// Whether a Ctrl-D typed before the read began (in the terminal's normal, canonical mode, e.g.
/// while the previous command finished) is waiting. The terminal keeps it as an end-of-file mark
/// that a canonical read() returns as 0 bytes, but that raw mode would deliver as a NUL byte, so
/// the Ctrl-D would be lost. Consumes it when it is there. (A pending end-of-file mark makes stdin
/// readable while FIONREAD, which skips such marks, counts nothing before it.)
static int take_pending_eof(void) {
    struct termios t;
    if (tcgetattr(STDIN_FILENO, &t) != 0 || !(t.c_lflag & ICANON)) return 0;
    struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN, .revents = 0 };
    if (poll(&p, 1, 0) != 1 || !(p.revents & (POLLIN | POLLHUP))) return 0;
    int available = 0;
    if (ioctl(STDIN_FILENO, FIONREAD, &available) != 0 || available != 0) return 0;
    char c;
    return read(STDIN_FILENO, &c, 1) == 0;
}

le_status le_read(le_editor *ed, const char *prompt, const char **line) {
    if (line) *line = NULL;
    free(ed->prompt);
    ed->prompt = strdup(prompt ? prompt : "");
    ed->interrupted = 0;
    struct sigaction tstp;
    ed->suspend_ignored = sigaction(SIGTSTP, NULL, &tstp) == 0 && tstp.sa_handler == SIG_IGN;

    // Edit mode before the prompt shows. el_wgets prints the prompt first and only then (in
    // el_wgetc) switches the terminal to raw mode, so keys typed right after the prompt appears
    // would be echoed and line-buffered by the terminal, and a Ctrl-D lost (libedit's FIONREAD
    // shortcut that switches earlier isn't compiled into Debian's build).
    if (take_pending_eof()) return LE_EOF;
    el_set(ed->el, EL_PREP_TERM, 1);
    int count = 0;
    errno = 0;
    const wchar_t *w = el_wgets(ed->el, &count);
    if (!w || count <= 0) {
        int saved = errno;
        // The cursor is still on the edited line (after "^C" or "^D"): end it.
        fputs("\n", stdout);
        fflush(stdout);
        if (ed->interrupted || (count < 0 && saved == EINTR)) return LE_INTERRUPTED;
        return LE_EOF;
    }
    size_t n = (size_t)count;
    while (n > 0 && (w[n - 1] == L'\n' || w[n - 1] == L'\r')) n--;
    free(ed->line);
    ed->line = utf8_from_wide(w, n);
    if (!ed->line) return LE_EOF;
    if (line) *line = ed->line;
    return LE_LINE;
}

void le_history_add(le_editor *ed, const char *entry) {
    HistEvent ev;
    history(ed->hist, &ev, H_ENTER, entry);
}

int le_history_load(le_editor *ed, const char *path) {
    HistEvent ev;
    return history(ed->hist, &ev, H_LOAD, path) < 0 ? -1 : 0;
}

int le_history_save(le_editor *ed, const char *path) {
    HistEvent ev;
    return history(ed->hist, &ev, H_SAVE, path) < 0 ? -1 : 0;
}

int le_history_count(le_editor *ed) {
    HistEvent ev;
    if (history(ed->hist, &ev, H_GETSIZE) < 0) return 0;
    return ev.num;
}
