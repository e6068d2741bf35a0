"""The side-by-side benchmark: gateway vs floors vs Bottender 1.x and aiogram 3. See README.md."""
