// libedit glue for sdshell's interactive prompt.
//
// libedit's el_set() and history() are variadic, so Swift cannot call them; this shim wraps the
// few calls the prompt needs behind plain C functions. Swift's wrapper is LineEditor.swift.
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

/// One editor: an EditLine on stdin/stdout/stderr in emacs mode, with its own history.
typedef struct le_editor le_editor;

/// What a Tab press should do, filled in by the completion callback. The strings are allocated
/// with malloc (e.g. strdup) by the callback and freed by the shim.
typedef struct le_completion_action {
    /// Characters (Unicode code points) before the cursor to delete before inserting.
    int delete_count;
    /// UTF-8 text to insert at the cursor, or NULL.
    char *insert;
    /// UTF-8 text to print below the edited line ('\n' between rows, none at the end), or NULL.
    /// The line is redrawn below it.
    char *listing;
    /// Non-zero: ring the bell (nothing to complete).
    int beep;
} le_completion_action;

/// The completion callback: `text_before_cursor` is the UTF-8 text of the line before the cursor,
/// `columns` the terminal's width. `action` arrives zeroed.
typedef void (*le_complete_fn)(void *context, const char *text_before_cursor, int columns,
                               le_completion_action *action);

typedef enum le_status {
    /// A line was entered; `*line` is valid until the next le_read or le_destroy.
    LE_LINE = 0,
    /// Ctrl-C (or a signal interrupted the read): the line was abandoned.
    LE_INTERRUPTED = 1,
    /// Ctrl-D on an empty line, or end of input.
    LE_EOF = 2,
} le_status;

/// Non-zero when stdin and stdout are both terminals (the editor is only used then).
int le_is_interactive(void);

/// Makes an editor for `program` (the name ~/.editrc entries are matched against), keeping at most
/// `history_size` entries. Sets LC_CTYPE to a UTF-8 locale (from the environment, else C.UTF-8)
/// so that libedit decodes multibyte input. NULL when stdin/stdout aren't terminals or on failure.
le_editor *le_create(const char *program, int history_size, le_complete_fn complete, void *context);
void le_destroy(le_editor *ed);

/// Reads one physical line with `prompt` (UTF-8). On LE_LINE, `*line` is the line without its
/// trailing newline. On LE_INTERRUPTED / LE_EOF from the prompt, the line ("...^C" / "^D") has
/// been ended with a newline already; a Ctrl-D typed before the read began gives LE_EOF without
/// showing the prompt. The terminal is back in its normal (cooked, ISIG) mode when this returns.
le_status le_read(le_editor *ed, const char *prompt, const char **line);

/// Adds an entry to the history (consecutive duplicates are kept once).
void le_history_add(le_editor *ed, const char *entry);
/// Loads the history file (libedit's format); 0 on success, -1 on failure (e.g. missing file).
int le_history_load(le_editor *ed, const char *path);
/// Saves the history to `path`; 0 on success, -1 on failure. Not atomic by itself.
int le_history_save(le_editor *ed, const char *path);
/// Number of entries in the history.
int le_history_count(le_editor *ed);

#ifdef __cplusplus
}
#endif
