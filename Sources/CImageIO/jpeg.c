#include "image_io.h"

#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/// libjpeg reports fatal errors through error_exit; this one jumps back with the message kept.
typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} sd_jpeg_error;

static void sd_jpeg_error_exit(j_common_ptr info) {
    sd_jpeg_error *error = (sd_jpeg_error *)info->err;
    (*info->err->format_message)(info, error->message);
    longjmp(error->jump, 1);
}

/// Warnings about damaged but decodable data are ignored, as Pillow does; a file that ends early
/// is an error (libjpeg would fill the rest with grey; Pillow refuses it as truncated).
static void sd_jpeg_warning(j_common_ptr info, int level) {
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) sd_jpeg_error_exit(info);
}

int sd_jpeg_read(FILE *file, sd_rgb_image *out, char *error, size_t error_size) {
    struct jpeg_decompress_struct info;
    sd_jpeg_error jerr;
    uint8_t *volatile pixels = NULL;
    memset(out, 0, sizeof(*out));
    info.err = jpeg_std_error(&jerr.base);
    jerr.base.error_exit = sd_jpeg_error_exit;
    jerr.base.emit_message = sd_jpeg_warning;
    if (setjmp(jerr.jump)) {
        snprintf(error, error_size, "%s", jerr.message);
        jpeg_destroy_decompress(&info);
        free(pixels);
        return -1;
    }
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_read_header(&info, TRUE);
    if (info.image_width > SD_IMAGE_MAX_SIDE || info.image_height > SD_IMAGE_MAX_SIDE ||
        (uint64_t)info.image_width * info.image_height > SD_IMAGE_MAX_PIXELS) {
        snprintf(error, error_size, "an image of %ux%u pixels is too large (at most %d on a side and %d pixels)",
                 info.image_width, info.image_height, SD_IMAGE_MAX_SIDE, SD_IMAGE_MAX_PIXELS);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    info.out_color_space = JCS_RGB;  // greyscale and YCbCr expand to RGB; CMYK is refused by libjpeg
    jpeg_start_decompress(&info);
    size_t row = (size_t)info.output_width * 3;
    pixels = malloc(row * info.output_height);
    if (!pixels) {
        snprintf(error, error_size, "out of memory for %ux%u pixels", info.output_width, info.output_height);
        jpeg_destroy_decompress(&info);
        return -1;
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW line = pixels + row * info.output_scanline;
        jpeg_read_scanlines(&info, &line, 1);
    }
    jpeg_finish_decompress(&info);
    out->width = info.output_width;
    out->height = info.output_height;
    out->rgb = pixels;
    jpeg_destroy_decompress(&info);
    return 0;
}

void sd_rgb_free(sd_rgb_image *image) {
    free(image->rgb);
    image->rgb = NULL;
}
