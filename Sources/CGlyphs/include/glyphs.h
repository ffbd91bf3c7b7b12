// Text rasterisation for grid labels (FreeType). Placeholder: filled in by the grid work.
#pragma once
