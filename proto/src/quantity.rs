//! Resource quantities (`250m`, `64Mi`, `1.5Gi`, `2e3`): parsing, comparison, arithmetic.
