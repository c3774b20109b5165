/*
 * svg.c -- the web view's charts, drawn as inline SVG by the project (no
 * script, no chart library, nothing fetched at view time): a line chart
 * of a metric over the commits with the best one marked, sorted
 * horizontal bars for a diff, and a histogram. Labels and tooltips from
 * the repository go through wb_text.
 */
#include "web.h"

#include <math.h>
#include <string.h>

enum { LW = 680, LH = 280, ML = 70, MR = 20, MT = 16, MB = 44 };

static void axis_ticks(struct wbuf *b, double lo, double hi, bool xaxis)
{
    for (int i = 0; i <= 4; i++) {
        double v = lo + (hi - lo) * i / 4;
        if (xaxis) {
            double px = ML + (double)(LW - ML - MR) * i / 4;
            wb_printf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" "
                         "class=\"grid\"/>", px, MT, px, LH - MB);
            wb_printf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">",
                      px, LH - MB + 16);
        } else {
            double py = LH - MB - (double)(LH - MT - MB) * i / 4;
            wb_printf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" "
                         "class=\"grid\"/>", ML, py, LW - MR, py);
            wb_printf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">",
                      ML - 6, py + 4);
        }
        wb_num(b, v);
        wb_puts(b, "</text>");
    }
}

void svg_line(struct wbuf *b, const char *xlabel, const char *ylabel,
              const double *x, const double *y, const char *const *tips,
              size_t n, long best)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        x0 = fmin(x0, x[i]);
        x1 = fmax(x1, x[i]);
        y0 = fmin(y0, y[i]);
        y1 = fmax(y1, y[i]);
    }
    if (n == 0)
        x0 = y0 = 0, x1 = y1 = 1;
    if (x1 <= x0)
        x0 -= 1, x1 += 1;
    if (y1 <= y0) {
        double d = fabs(y0) > 0 ? fabs(y0) * 0.1 : 1;
        y0 -= d, y1 += d;
    }
    double pw = LW - ML - MR, ph = LH - MT - MB;
#define PX(v) (ML + ((v) - x0) / (x1 - x0) * pw)
#define PY(v) (LH - MB - ((v) - y0) / (y1 - y0) * ph)
    wb_printf(b, "<svg class=\"chart line\" xmlns=\"http://www.w3.org/2000/"
                 "svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "role=\"img\">", LW, LH, LW, LH);
    axis_ticks(b, x0, x1, true);
    axis_ticks(b, y0, y1, false);
    wb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                 "class=\"axis\"/><line x1=\"%d\" y1=\"%d\" x2=\"%d\" "
                 "y2=\"%d\" class=\"axis\"/>",
              ML, LH - MB, LW - MR, LH - MB, ML, MT, ML, LH - MB);
    wb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" "
                 "class=\"label\">", ML + (LW - ML - MR) / 2, LH - 8);
    wb_text(b, xlabel);
    wb_printf(b, "</text><text x=\"14\" y=\"%d\" text-anchor=\"middle\" "
                 "class=\"label\" transform=\"rotate(-90 14 %d)\">",
              MT + (LH - MT - MB) / 2, MT + (LH - MT - MB) / 2);
    wb_text(b, ylabel);
    wb_puts(b, "</text><polyline class=\"series\" points=\"");
    for (size_t i = 0; i < n; i++)
        wb_printf(b, "%s%.1f,%.1f", i ? " " : "", PX(x[i]), PY(y[i]));
    wb_puts(b, "\"/>");
    for (size_t i = 0; i < n; i++) {
        wb_printf(b, "<circle class=\"pt\" cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\">",
                  PX(x[i]), PY(y[i]));
        if (tips && tips[i]) {
            wb_puts(b, "<title>");
            wb_text(b, tips[i]);
            wb_puts(b, "</title>");
        }
        wb_puts(b, "</circle>");
    }
    if (best >= 0 && (size_t)best < n) {
        double bx = PX(x[best]), by = PY(y[best]);
        wb_printf(b, "<circle class=\"best\" cx=\"%.1f\" cy=\"%.1f\" "
                     "r=\"6\"/><text class=\"best\" x=\"%.1f\" y=\"%.1f\" "
                     "text-anchor=\"%s\">best</text>",
                  bx, by, bx + (bx > LW - 80 ? -9 : 9), by - 8,
                  bx > LW - 80 ? "end" : "start");
    }
    wb_puts(b, "</svg>");
#undef PX
#undef PY
}

/* A label cut to at most max bytes, not inside a UTF-8 sequence. */
static size_t cut_label(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max)
        return n;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

void svg_bars(struct wbuf *b, const char *title, const char *const *labels,
              const double *v, size_t n)
{
    enum { BW = 680, LABEL = 260, ROW = 18, TOP = 22 };
    double mx = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]) && v[i] > mx)
            mx = v[i];
    int h = TOP + (int)n * ROW + 8;
    wb_printf(b, "<svg class=\"chart bars\" xmlns=\"http://www.w3.org/2000/"
                 "svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "role=\"img\"><text x=\"0\" y=\"14\" class=\"label\">",
              BW, h, BW, h);
    wb_text(b, title);
    wb_puts(b, "</text>");
    for (size_t i = 0; i < n; i++) {
        int y = TOP + (int)i * ROW;
        double frac = !isfinite(v[i]) ? 1 : mx > 0 ? v[i] / mx : 0;
        double w = frac * (BW - LABEL - 80);
        size_t cut = cut_label(labels[i], 36);
        wb_printf(b, "<g><title>");
        wb_text(b, labels[i]);
        wb_puts(b, "</title>");
        wb_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
                  LABEL - 6, y + 13);
        wb_textn(b, labels[i], cut);
        if (cut < strlen(labels[i]))
            wb_puts(b, "\xe2\x80\xa6");
        wb_printf(b, "</text><rect class=\"%s\" x=\"%d\" y=\"%d\" "
                     "width=\"%.1f\" height=\"%d\"/>",
                  isfinite(v[i]) ? "bar" : "bar inf", LABEL, y + 2,
                  w < 1 && v[i] > 0 ? 1 : w, ROW - 4);
        wb_printf(b, "<text x=\"%.1f\" y=\"%d\">", LABEL + w + 4, y + 13);
        wb_num(b, v[i]);
        wb_puts(b, "</text></g>");
    }
    wb_puts(b, "</svg>");
}

void svg_hist(struct wbuf *b, const uint64_t *bins, double lo, double hi)
{
    enum { HW = 680, HH = 220, L = 60, B = 36, T = 10 };
    uint64_t mx = 1;
    for (int i = 0; i < WEB_BINS; i++)
        if (bins[i] > mx)
            mx = bins[i];
    double bw = (double)(HW - L - 10) / WEB_BINS;
    wb_printf(b, "<svg class=\"chart hist\" xmlns=\"http://www.w3.org/2000/"
                 "svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                 "role=\"img\">", HW, HH, HW, HH);
    for (int i = 0; i < WEB_BINS; i++) {
        double h = (double)bins[i] / (double)mx * (HH - T - B);
        wb_printf(b, "<rect class=\"bar\" x=\"%.1f\" y=\"%.1f\" "
                     "width=\"%.1f\" height=\"%.1f\"><title>",
                  L + i * bw, HH - B - h, bw - 1, h);
        wb_num(b, lo + (hi - lo) * i / WEB_BINS);
        wb_puts(b, " .. ");
        wb_num(b, lo + (hi - lo) * (i + 1) / WEB_BINS);
        wb_printf(b, ": %llu</title></rect>", (unsigned long long)bins[i]);
    }
    wb_printf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" "
                 "class=\"axis\"/>", L, HH - B, HW - 10, HH - B);
    wb_printf(b, "<text x=\"%d\" y=\"%d\">", L, HH - B + 16);
    wb_num(b, lo);
    wb_printf(b, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">",
              HW - 10, HH - B + 16);
    wb_num(b, hi);
    wb_printf(b, "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">%llu"
                 "</text><text x=\"%d\" y=\"%d\" text-anchor=\"end\">0"
                 "</text></svg>",
              L - 4, T + 10, (unsigned long long)mx, L - 4, HH - B);
}
