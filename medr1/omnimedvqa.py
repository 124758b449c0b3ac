"""OmniMedVQA vocabulary: canonical modalities and tasks, and the raw strings they appear as."""

MODALITIES = (
    "CT",
    "MRI",
    "X-Ray",
    "Ultrasound",
    "Dermoscopy",
    "Fundus Photography",
    "OCT",
    "Microscopy",
)

TASKS = (
    "Anatomy Identification",
    "Disease Diagnosis",
    "Lesion Grading",
    "Modality Recognition",
    "Other Biological Attributes",
)

# The `modality_type` strings exactly as the open-access JSON files spell them (typos included);
# the released Med-R1 split file names use these too.
RAW_MODALITY = {
    "CT": "CT(Computed Tomography)",
    "MRI": "MR (Mag-netic Resonance Imaging)",
    "X-Ray": "X-Ray",
    "Ultrasound": "ultrasound",
    "Dermoscopy": "Dermoscopy",
    "Fundus Photography": "Fundus Photography",
    "OCT": "OCT (Optical Coherence Tomography",
    "Microscopy": "Microscopy Images",
}

OPTION_KEYS = ("option_A", "option_B", "option_C", "option_D")
LETTERS = "ABCD"
