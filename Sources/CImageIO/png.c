// PNG reading and writing through libpng, with its longjmp error reporting contained here.
#include "image_io.h"
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

typedef struct { jmp_buf jump; char *error; size_t error_size; } err_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    err_ctx *e = (err_ctx *)png_get_error_ptr(png);
    snprintf(e->error, e->error_size, "%s", msg);
    longjmp(e->jump, 1);
}
static void on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int sd_png_write_rgb(FILE *file, const uint8_t *rgb, uint32_t width, uint32_t height, const sd_png_text *texts,
                     int text_count, char *error, size_t error_size) {
    err_ctx e = {.error = error, .error_size = error_size};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning);
    if (!png) { snprintf(error, error_size, "libpng: cannot create a write struct"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        snprintf(error, error_size, "libpng: cannot create an info struct");
        return -1;
    }
    png_text *volatile chunks = NULL;   /* volatile: read after a longjmp */
    if (setjmp(e.jump)) {
        /* `error` holds libpng's message (on_error); destroying the structs clears `info`, so
           nothing here may test it to choose a message. */
        png_destroy_write_struct(&png, &info);
        free(chunks);
        return -1;
    }
    png_init_io(png, file);
    png_set_IHDR(png, info, width, height, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (text_count > 0) {
        chunks = calloc((size_t)text_count, sizeof(png_text));
        for (int i = 0; i < text_count; i++) {
            chunks[i].compression = texts[i].international ? PNG_ITXT_COMPRESSION_NONE : PNG_TEXT_COMPRESSION_NONE;
            chunks[i].key = (png_charp)texts[i].key;
            chunks[i].text = (png_charp)texts[i].text;
            chunks[i].text_length = strlen(texts[i].text);
        }
        png_set_text(png, info, chunks, text_count);
    }
    png_write_info(png, info);
    for (uint32_t y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(rgb + (size_t)y * width * 3));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(chunks);
    return 0;
}

int sd_png_read(FILE *file, sd_png_image *out, char *error, size_t error_size) {
    memset(out, 0, sizeof *out);
    err_ctx e = {.error = error, .error_size = error_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &e, on_error, on_warning);
    if (!png) { snprintf(error, error_size, "libpng: cannot create a read struct"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(error, error_size, "libpng: cannot create an info struct");
        return -1;
    }
    png_bytep *volatile rows = NULL;    /* volatile: read after a longjmp */
    if (setjmp(e.jump)) {
        /* `error` holds libpng's message (on_error) or ours; destroying the structs clears
           `info`, so nothing here may test it to choose a message. */
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        sd_png_free(out);
        return -1;
    }
    png_init_io(png, file);
    /* Bounds on what a small file can make libpng allocate: text and other ancillary chunks
       (zTXt/iTXt inflate into this much at most; larger ones are skipped with a warning), and
       how many of them are kept. The pixels are bounded by the size check below. */
    png_set_chunk_malloc_max(png, SD_PNG_MAX_CHUNK_BYTES);
    png_set_chunk_cache_max(png, 1000);
    png_read_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if (w > SD_IMAGE_MAX_SIDE || h > SD_IMAGE_MAX_SIDE || (uint64_t)w * h > SD_IMAGE_MAX_PIXELS) {
        snprintf(error, error_size, "an image of %ux%u pixels is too large (at most %d on a side and %d pixels)", w, h,
                 SD_IMAGE_MAX_SIDE, SD_IMAGE_MAX_PIXELS);
        longjmp(e.jump, 1);
    }
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    out->width = w; out->height = h;
    out->rgba = malloc((size_t)w * h * 4);
    rows = malloc(sizeof(png_bytep) * (h ? h : 1));
    if (!out->rgba || !rows) { snprintf(error, error_size, "out of memory for %ux%u pixels", w, h); longjmp(e.jump, 1); }
    for (uint32_t y = 0; y < h; y++) rows[y] = out->rgba + (size_t)y * w * 4;
    png_read_image(png, rows);
    free(rows);
    rows = NULL;
    png_read_end(png, info);
    png_textp texts = NULL;
    int n = png_get_text(png, info, &texts, NULL);
    size_t size = 0;
    for (int i = 0; i < n; i++) size += strlen(texts[i].key) + 1 + strlen(texts[i].text) + 1;
    out->texts = malloc(size ? size : 1);
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        size_t k = strlen(texts[i].key) + 1;
        memcpy(out->texts + pos, texts[i].key, k); pos += k;
        size_t t = strlen(texts[i].text);
        memcpy(out->texts + pos, texts[i].text, t); pos += t;
        out->texts[pos++] = 0;
    }
    out->texts_size = size;
    out->text_count = n;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

void sd_png_free(sd_png_image *image) {
    free(image->rgba); free(image->texts);
    image->rgba = NULL; image->texts = NULL;
}
