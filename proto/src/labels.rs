//! Label selectors, equality- and set-based, as strings and as matchLabels/matchExpressions.
