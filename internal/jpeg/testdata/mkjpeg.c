/*
 * mkjpeg: writes test JPEGs with libjpeg options that Pillow 9.4's encoder
 * does not expose (restart intervals, 4:4:0/4:1:1/... sampling factors, RGB
 * and YCCK colour spaces, non-interleaved and custom progressive scan
 * scripts).
 * gen_golden.py compiles and runs it; the golden pixels still come from
 * Pillow's decoder, this program only produces inputs.
 *
 * usage: mkjpeg W H IN Q SAMP PROG RESTART CS < pixels > out.jpg
 *   IN      1 (gray), 3 (RGB) or 4 (CMYK) bytes per input pixel
 *   Q       quality 1..100
 *   SAMP    sampling factors "HxV,HxV,HxV" ("HxV,HxV,HxV,HxV" for 4
 *           components; ignored for gray)
 *   PROG    0 sequential, 1 jpeg_simple_progression, 2 one scan per
 *           component (sequential), 3 progressive script with only
 *           non-interleaved scans (one component after the other)
 *   RESTART restart interval in MCUs (0 = none)
 *   CS      ycc, rgb or gray for 1 or 3 input bytes, cmyk or ycck for 4:
 *           the colour space stored in the file (libjpeg writes an Adobe
 *           marker with transform 0 for cmyk, 2 for ycck)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>

int main(int argc, char **argv)
{
  if (argc != 9) {
    fprintf(stderr, "usage: mkjpeg W H IN Q SAMP PROG RESTART CS\n");
    return 2;
  }
  int w = atoi(argv[1]), h = atoi(argv[2]), in = atoi(argv[3]);
  int q = atoi(argv[4]), prog = atoi(argv[6]), restart = atoi(argv[7]);
  const char *samp = argv[5], *cs = argv[8];

  size_t n = (size_t)w * h * in;
  unsigned char *pix = malloc(n);
  if (fread(pix, 1, n, stdin) != n) {
    fprintf(stderr, "mkjpeg: short input\n");
    return 1;
  }

  struct jpeg_compress_struct cinfo;
  struct jpeg_error_mgr jerr;
  cinfo.err = jpeg_std_error(&jerr);
  jpeg_create_compress(&cinfo);
  jpeg_stdio_dest(&cinfo, stdout);
  cinfo.image_width = w;
  cinfo.image_height = h;
  cinfo.input_components = in;
  cinfo.in_color_space = in == 1 ? JCS_GRAYSCALE : in == 4 ? JCS_CMYK : JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, q, TRUE);
  if (strcmp(cs, "rgb") == 0)
    jpeg_set_colorspace(&cinfo, JCS_RGB);
  else if (strcmp(cs, "gray") == 0)
    jpeg_set_colorspace(&cinfo, JCS_GRAYSCALE);
  else if (strcmp(cs, "cmyk") == 0)
    jpeg_set_colorspace(&cinfo, JCS_CMYK);
  else if (strcmp(cs, "ycck") == 0)
    jpeg_set_colorspace(&cinfo, JCS_YCCK);
  if (cinfo.num_components >= 3) {
    int f[8];
    int nf = sscanf(samp, "%dx%d,%dx%d,%dx%d,%dx%d", &f[0], &f[1], &f[2], &f[3],
                    &f[4], &f[5], &f[6], &f[7]);
    if (nf != 2 * cinfo.num_components) {
      fprintf(stderr, "mkjpeg: bad SAMP %s for %d components\n", samp, cinfo.num_components);
      return 2;
    }
    for (int i = 0; i < cinfo.num_components; i++) {
      cinfo.comp_info[i].h_samp_factor = f[2 * i];
      cinfo.comp_info[i].v_samp_factor = f[2 * i + 1];
    }
  }
  static jpeg_scan_info scans[24];
  if (prog == 1) {
    jpeg_simple_progression(&cinfo);
  } else if (prog == 2 && cinfo.num_components > 1) {
    for (int i = 0; i < cinfo.num_components; i++) {
      scans[i].comps_in_scan = 1;
      scans[i].component_index[0] = i;
      scans[i].Ss = 0;
      scans[i].Se = 63;
      scans[i].Ah = 0;
      scans[i].Al = 0;
    }
    cinfo.scan_info = scans;
    cinfo.num_scans = cinfo.num_components;
  } else if (prog == 3) {
    /* Per component: DC (Al=1), AC 1-5 (Al=2), AC 6-63 (Al=0),
     * AC 1-5 refine to 1 and to 0, DC refine. */
    int k = 0;
    for (int i = 0; i < cinfo.num_components; i++) {
      int ss[6] = {0, 1, 6, 1, 1, 0}, se[6] = {0, 5, 63, 5, 5, 0};
      int ah[6] = {0, 0, 0, 2, 1, 1}, al[6] = {1, 2, 0, 1, 0, 0};
      for (int j = 0; j < 6; j++, k++) {
        scans[k].comps_in_scan = 1;
        scans[k].component_index[0] = i;
        scans[k].Ss = ss[j];
        scans[k].Se = se[j];
        scans[k].Ah = ah[j];
        scans[k].Al = al[j];
      }
    }
    cinfo.scan_info = scans;
    cinfo.num_scans = k;
  }
  cinfo.restart_interval = restart;

  jpeg_start_compress(&cinfo, TRUE);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = pix + (size_t)cinfo.next_scanline * w * in;
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  free(pix);
  return 0;
}
