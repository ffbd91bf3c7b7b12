// Text rasterisation for grid labels with FreeType. See glyphs.h.
#include "glyphs.h"

#include <ft2build.h>
#include FT_FREETYPE_H
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct glyphs_font {
    FT_Library library;
    FT_Face face;
    int sized; // a pixel size has been set
};

static void set_message(char *message, size_t size, const char *format, const char *a, const char *b) {
    if (message == NULL || size == 0) return;
    snprintf(message, size, format, a ? a : "", b ? b : "");
}

static const char *freetype_error_text(FT_Error error, char *scratch, size_t size) {
    const char *text = FT_Error_String(error); // null unless FreeType was built with error strings
    if (text != NULL) return text;
    snprintf(scratch, size, "FreeType error 0x%02x", (unsigned)error);
    return scratch;
}

int glyphs_open(const char *path, glyphs_font **out, char *message, size_t message_size) {
    if (out != NULL) *out = NULL;
    if (path == NULL || out == NULL) {
        set_message(message, message_size, "%s%s", "no path given", NULL);
        return GLYPHS_ERR_ARGUMENT;
    }
    // Open it ourselves first so that a missing or unreadable file says why (errno).
    FILE *probe = fopen(path, "rb");
    if (probe == NULL) {
        set_message(message, message_size, "%s: %s", path, strerror(errno));
        return GLYPHS_ERR_NOT_FOUND;
    }
    fclose(probe);

    glyphs_font *font = calloc(1, sizeof *font);
    if (font == NULL) {
        set_message(message, message_size, "%s%s", "out of memory", NULL);
        return GLYPHS_ERR_LIBRARY;
    }
    FT_Error error = FT_Init_FreeType(&font->library);
    if (error != 0) {
        free(font);
        set_message(message, message_size, "%s%s", "FreeType could not be initialised", NULL);
        return GLYPHS_ERR_LIBRARY;
    }
    error = FT_New_Face(font->library, path, 0, &font->face);
    if (error != 0) {
        char scratch[64];
        const char *text = freetype_error_text(error, scratch, sizeof scratch);
        FT_Done_FreeType(font->library);
        free(font);
        if (error == FT_Err_Cannot_Open_Resource) {
            set_message(message, message_size, "%s: cannot open (%s)", path, text);
            return GLYPHS_ERR_NOT_FOUND;
        }
        if (error == FT_Err_Unknown_File_Format || error == FT_Err_Invalid_File_Format ||
            error == FT_Err_Cannot_Open_Stream || error == FT_Err_Invalid_Stream_Operation ||
            error == FT_Err_Invalid_Stream_Read || error == FT_Err_Invalid_Stream_Seek) {
            set_message(message, message_size, "%s: not a font file FreeType can read (%s)", path, text);
            return GLYPHS_ERR_NOT_A_FONT;
        }
        set_message(message, message_size, "%s: %s", path, text);
        return GLYPHS_ERR_FREETYPE;
    }
    *out = font;
    if (message != NULL && message_size > 0) message[0] = '\0';
    return GLYPHS_OK;
}

void glyphs_close(glyphs_font *font) {
    if (font == NULL) return;
    if (font->face != NULL) FT_Done_Face(font->face);
    if (font->library != NULL) FT_Done_FreeType(font->library);
    free(font);
}

int glyphs_set_pixel_size(glyphs_font *font, int32_t pixels) {
    if (font == NULL) return GLYPHS_ERR_ARGUMENT;
    if (pixels < 1 || pixels > 4096) return GLYPHS_ERR_SIZE;
    if (FT_Set_Pixel_Sizes(font->face, 0, (FT_UInt)pixels) != 0) {
        font->sized = 0;
        return GLYPHS_ERR_SIZE;
    }
    font->sized = 1;
    return GLYPHS_OK;
}

/// Decodes one code point at `*at` (advancing it); malformed, overlong, surrogate and
/// out-of-range sequences give U+FFFD and consume one byte.
static uint32_t next_code_point(const uint8_t *s, size_t length, size_t *at) {
    size_t i = *at;
    uint8_t b = s[i];
    if (b < 0x80) {
        *at = i + 1;
        return b;
    }
    int extra;
    uint32_t cp, min;
    if ((b & 0xE0) == 0xC0) { extra = 1; cp = b & 0x1F; min = 0x80; }
    else if ((b & 0xF0) == 0xE0) { extra = 2; cp = b & 0x0F; min = 0x800; }
    else if ((b & 0xF8) == 0xF0) { extra = 3; cp = b & 0x07; min = 0x10000; }
    else { *at = i + 1; return 0xFFFD; }
    if (length - i <= (size_t)extra) { *at = i + 1; return 0xFFFD; }
    for (int k = 1; k <= extra; k++) {
        uint8_t c = s[i + (size_t)k];
        if ((c & 0xC0) != 0x80) { *at = i + 1; return 0xFFFD; }
        cp = (cp << 6) | (c & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) { *at = i + 1; return 0xFFFD; }
    *at = i + 1 + (size_t)extra;
    return cp;
}

/// Floor division of a 26.6 value to whole pixels, rounding to nearest.
static int64_t round_26_6(int64_t v) {
    int64_t t = v + 32;
    return t >= 0 ? t / 64 : -((-t + 63) / 64);
}

static void line_extents(FT_Face face, glyphs_metrics *m) {
    // Scaled ascender/descender in 26.6 (FreeType rounds them for hinted scalable faces).
    int64_t asc = face->size->metrics.ascender, desc = -(int64_t)face->size->metrics.descender;
    m->ascent = (int32_t)((asc + 63) / 64);
    m->descent = desc > 0 ? (int32_t)((desc + 63) / 64) : 0;
    m->line_height = m->ascent + m->descent;
}

/// Walks the text, calling `draw` (when not null) for each loaded glyph at its pen position
/// (26.6, relative to the line origin). Returns the final pen position through `pen_out`.
typedef void (*glyph_sink)(FT_GlyphSlot slot, int64_t pen_x, void *context);

static int walk(glyphs_font *font, const char *utf8, size_t length, int render, glyph_sink sink, void *context,
                int64_t *pen_out) {
    FT_Face face = font->face;
    const uint8_t *s = (const uint8_t *)utf8;
    int64_t pen = 0;
    FT_UInt previous = 0;
    int kerning = FT_HAS_KERNING(face) ? 1 : 0;
    size_t at = 0;
    while (at < length) {
        uint32_t cp = next_code_point(s, length, &at);
        FT_UInt index = FT_Get_Char_Index(face, cp);
        if (kerning && previous != 0 && index != 0) {
            FT_Vector delta;
            if (FT_Get_Kerning(face, previous, index, FT_KERNING_DEFAULT, &delta) == 0) pen += delta.x;
        }
        if (FT_Load_Glyph(face, index, FT_LOAD_DEFAULT) != 0) return GLYPHS_ERR_FREETYPE;
        if (render) {
            if (face->glyph->format != FT_GLYPH_FORMAT_BITMAP &&
                FT_Render_Glyph(face->glyph, FT_RENDER_MODE_NORMAL) != 0)
                return GLYPHS_ERR_FREETYPE;
            if (sink != NULL) sink(face->glyph, pen, context);
        }
        pen += face->glyph->advance.x;
        previous = index;
    }
    *pen_out = pen;
    return GLYPHS_OK;
}

int glyphs_measure(glyphs_font *font, const char *utf8, size_t length, glyphs_metrics *out) {
    if (font == NULL || out == NULL || (utf8 == NULL && length > 0)) return GLYPHS_ERR_ARGUMENT;
    if (!font->sized) return GLYPHS_ERR_NO_SIZE;
    int64_t pen = 0;
    int rc = walk(font, utf8, length, 0, NULL, NULL, &pen);
    if (rc != GLYPHS_OK) return rc;
    line_extents(font->face, out);
    int64_t w = round_26_6(pen);
    out->width = (int32_t)(w < 0 ? 0 : (w > INT32_MAX ? INT32_MAX : w));
    return GLYPHS_OK;
}

typedef struct {
    uint8_t *coverage;
    int64_t width, height;
    size_t stride;
    int64_t x, baseline;
} target;

static void blit(FT_GlyphSlot slot, int64_t pen_x, void *context) {
    target *t = context;
    const FT_Bitmap *bitmap = &slot->bitmap;
    if (bitmap->buffer == NULL || bitmap->rows == 0 || bitmap->width == 0) return;
    int mono = bitmap->pixel_mode == FT_PIXEL_MODE_MONO;
    if (!mono && bitmap->pixel_mode != FT_PIXEL_MODE_GRAY) return; // colour or LCD bitmaps: not used
    int64_t left = t->x + round_26_6(pen_x) + slot->bitmap_left;
    int64_t top = t->baseline - slot->bitmap_top;
    int64_t pitch = bitmap->pitch;
    // With a negative pitch the buffer starts at the bottom row (FreeType's convention).
    const uint8_t *first = bitmap->buffer + (pitch < 0 ? -pitch * (int64_t)(bitmap->rows - 1) : 0);
    for (int64_t r = 0; r < (int64_t)bitmap->rows; r++) {
        int64_t py = top + r;
        if (py < 0 || py >= t->height) continue;
        const uint8_t *row = first + r * pitch;
        uint8_t *out = t->coverage + (size_t)py * t->stride;
        for (int64_t c = 0; c < (int64_t)bitmap->width; c++) {
            int64_t px = left + c;
            if (px < 0 || px >= t->width) continue;
            uint8_t v = mono ? ((row[c >> 3] >> (7 - (c & 7))) & 1 ? 255 : 0) : row[c];
            if (v > out[px]) out[px] = v;
        }
    }
}

int glyphs_render(glyphs_font *font, const char *utf8, size_t length, uint8_t *coverage, int32_t width,
                  int32_t height, size_t stride, int32_t x, int32_t y) {
    if (font == NULL || (utf8 == NULL && length > 0)) return GLYPHS_ERR_ARGUMENT;
    if (width < 0 || height < 0 || stride < (size_t)width) return GLYPHS_ERR_ARGUMENT;
    if (coverage == NULL && width > 0 && height > 0) return GLYPHS_ERR_ARGUMENT;
    if (!font->sized) return GLYPHS_ERR_NO_SIZE;
    if (width == 0 || height == 0 || length == 0) return GLYPHS_OK;
    glyphs_metrics m;
    line_extents(font->face, &m);
    target t = {coverage, width, height, stride, x, (int64_t)y + m.ascent};
    int64_t pen = 0;
    return walk(font, utf8, length, 1, blit, &t, &pen);
}

const char *glyphs_error_string(int code) {
    switch (code) {
    case GLYPHS_OK: return "no error";
    case GLYPHS_ERR_ARGUMENT: return "invalid argument";
    case GLYPHS_ERR_LIBRARY: return "FreeType could not be initialised";
    case GLYPHS_ERR_NOT_FOUND: return "font file not found or not readable";
    case GLYPHS_ERR_NOT_A_FONT: return "not a font file";
    case GLYPHS_ERR_SIZE: return "font cannot be set to that pixel size";
    case GLYPHS_ERR_NO_SIZE: return "no pixel size set";
    case GLYPHS_ERR_FREETYPE: return "FreeType failed to load or render a glyph";
    default: return "unknown error";
    }
}
