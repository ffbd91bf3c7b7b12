#ifndef SD_IMAGE_IO_H
#define SD_IMAGE_IO_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/// Largest image read (PNG or JPEG): on a side, and in pixels (2^25, an 8K frame), checked from
/// the header before any pixel is decoded, so a small compressed file cannot claim gigabytes.
#define SD_IMAGE_MAX_SIDE 16384
#define SD_IMAGE_MAX_PIXELS (1 << 25)
/// Largest ancillary PNG chunk (text chunks after inflating) read; larger ones are skipped with a
/// warning. libpng's usual default, set here so that it does not depend on how libpng was built.
#define SD_PNG_MAX_CHUNK_BYTES 8000000

/// A text chunk: Latin-1 text goes to tEXt, anything else to an uncompressed iTXt (as A1111 does).
typedef struct { const char *key; const char *text; int international; } sd_png_text;

/// Writes 8-bit RGB (rows top to bottom, 3 bytes a pixel) with text chunks to an open file.
/// libpng reports errors with longjmp, so they are caught here; returns 0 or -1 with `error` set.
int sd_png_write_rgb(FILE *file, const uint8_t *rgb, uint32_t width, uint32_t height, const sd_png_text *texts,
                     int text_count, char *error, size_t error_size);

/// A decoded PNG: 8-bit RGBA pixels and its text chunks (key\0text\0 pairs). Free with sd_png_free.
typedef struct {
    uint32_t width, height;
    uint8_t *rgba;
    char *texts;
    size_t texts_size;
    int text_count;
} sd_png_image;

/// Reads any PNG (expanded to 8-bit RGBA). Returns 0 or -1 with `error` set.
int sd_png_read(FILE *file, sd_png_image *out, char *error, size_t error_size);
void sd_png_free(sd_png_image *image);

/// Decoded 8-bit RGB pixels, rows top to bottom. Free with sd_rgb_free.
typedef struct {
    uint32_t width, height;
    uint8_t *rgb;
} sd_rgb_image;

/// Reads a JPEG with libjpeg(-turbo), greyscale and colour alike, as 8-bit RGB.
/// Returns 0 or -1 with `error` set.
int sd_jpeg_read(FILE *file, sd_rgb_image *out, char *error, size_t error_size);
void sd_rgb_free(sd_rgb_image *image);
#endif
