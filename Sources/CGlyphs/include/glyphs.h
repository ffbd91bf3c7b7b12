// Text rasterisation for grid labels (FreeType): open a font, measure and draw UTF-8 lines
// into an 8-bit coverage buffer. Deterministic: the same font, size and text give the same bytes.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Result codes. Every function returns one; `glyphs_open` also writes a message.
enum {
    GLYPHS_OK = 0,
    GLYPHS_ERR_ARGUMENT = 1,   ///< a null pointer, a negative size, a stride narrower than the width
    GLYPHS_ERR_LIBRARY = 2,    ///< FreeType could not start (out of memory)
    GLYPHS_ERR_NOT_FOUND = 3,  ///< the font file could not be opened
    GLYPHS_ERR_NOT_A_FONT = 4, ///< the file opened but FreeType does not recognise it as a font
    GLYPHS_ERR_SIZE = 5,       ///< the pixel size is out of range or the face cannot be scaled to it
    GLYPHS_ERR_NO_SIZE = 6,    ///< measure or render before a pixel size was set
    GLYPHS_ERR_FREETYPE = 7,   ///< any other FreeType failure
};

/// An open font face with its own FreeType library: one per thread at a time (not thread-safe),
/// different fonts may be used from different threads.
typedef struct glyphs_font glyphs_font;

/// Extents of one line of text at the current pixel size, in whole pixels.
typedef struct {
    int32_t width;       ///< pen advance of the whole line, kerning included
    int32_t ascent;      ///< from the top of the line box to the baseline (face ascender)
    int32_t descent;     ///< from the baseline to the bottom of the line box (positive)
    int32_t line_height; ///< ascent + descent: the height of the line box
} glyphs_metrics;

/// Opens the font at `path` (face 0). On failure returns a code, leaves `*out` null and, when
/// `message` is not null, writes a NUL-terminated explanation of at most `message_size` bytes.
int glyphs_open(const char *path, glyphs_font **out, char *message, size_t message_size);

/// Closes a font; null is ignored.
void glyphs_close(glyphs_font *font);

/// Sets the size: an em of `pixels` pixels (1...4096), as PIL's truetype(size=) does.
int glyphs_set_pixel_size(glyphs_font *font, int32_t pixels);

/// Measures `length` bytes of UTF-8 (invalid sequences count as U+FFFD; no line breaking).
int glyphs_measure(glyphs_font *font, const char *utf8, size_t length, glyphs_metrics *out);

/// Draws a line of text into `coverage` (8-bit, `width` x `height`, rows `stride` bytes apart):
/// the line box's top-left corner is at (`x`, `y`), so the baseline is at y + ascent. Each pixel
/// becomes the larger of its old value and the glyph's coverage; everything outside the buffer is
/// clipped. Offsets may be negative or past the buffer.
int glyphs_render(glyphs_font *font, const char *utf8, size_t length, uint8_t *coverage, int32_t width,
                  int32_t height, size_t stride, int32_t x, int32_t y);

/// A short English description of a result code (static storage).
const char *glyphs_error_string(int code);

#ifdef __cplusplus
}
#endif
