"""Google's Gemini API: batch jobs from an uploaded file, generateContent for the other tiers."""
