"""Cache identity: the key that names one take of a shot in the cache, and the key that names an
output file. A clip's key hashes everything that changes its pixels (cache.shot_key); the output's
key hashes the edit and the encoder, from explicit lists of the plan's fields, so a setting that only
changes how the clips are made (`compile`, `attention`) never re-encodes an up-to-date video.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from mvgen.cache import shot_key
from mvgen.timeline import PlannedShot, RenderPlan, anchor_root

# Bump when assembly changes the output for the same inputs (encoder settings, retiming...).
# 2: every clip's last frame is used; 3: clips scaled by ffmpeg, one-pass mux; 4: clips played at
# the model's native speed (surplus frames unplayed), the video tagged as mvgen's; 5: the key hashes
# the edit and encoder fields below, not the whole plan; 6: frames between generated ones synthesised
# (`retime`, default flow) with a continuous source position
ASSEMBLY_VERSION = 6

# The plan's fields that decide the output's bytes besides the clips and the audio: the frame, the
# timing, the camera's beats, the encoder. A new RenderPlan or PlannedShot field must join these
# lists or GENERATION_ONLY (a test holds the three to the dataclasses).
OUTPUT_FIELDS = (
    "width", "height", "fps", "native_fps", "gen_width", "gen_height", "duration_s", "total_frames",
    "fit", "beats_s", "beats_per_bar", "crf", "x264_preset", "encode_threads",
)  # fmt: skip
SLOT_FIELDS = (
    "index", "start_frame", "end_frame", "slot_frames", "num_frames", "play_frames", "blend",
    "blend_frames", "camera", "chain", "segment", "span", "retime",
)  # fmt: skip
# What only changes how clips are made (their keys carry it) or what is only reported.
GENERATION_ONLY = {
    "plan": (
        "model", "family", "steps", "guidance", "max_sequence_length", "tempo_bpm", "beats_source",
        "audio_duration_s", "version", "sections_s", "quality", "step_cache", "step_cache_threshold",
        "compile", "attention", "shots", "beat_confidence", "image_fit", "window_frames",
    ),
    "slot": (
        "id", "source_index", "repeat", "prompt", "negative", "seed", "start_s", "end_s", "length_beats",
        "takes", "loras", "steps", "guidance", "cast", "image", "references", "reference_mode",
        "end", "end_next", "bridge",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class ModelIdentity:
    """What names a model in cache keys and records: its id, name and weights' revision; with
    shots the image-to-video sibling makes (chained, or from a still), its revision too, and with
    shots drawn to an end frame, the first-and-last-frame model's."""

    id: str
    name: str
    revision: str
    i2v_revision: str | None = None
    flf_revision: str | None = None

    @classmethod
    def of(cls, gen: Any, plan: RenderPlan) -> ModelIdentity:
        """The identity of a backend's model (reads fingerprints, loads nothing)."""
        ident = gen.identity()
        i2v = gen.i2v_revision() if any(s.uses_i2v and not s.uses_flf for s in plan.shots) else None
        flf = gen.flf_revision() if any(s.uses_flf for s in plan.shots) else None
        return cls(ident["id"], ident["name"], ident["revision"], i2v, flf)

    def to_json(self) -> dict[str, str]:
        data = {"id": self.id, "name": self.name, "revision": self.revision}
        extra = {"i2v_revision": self.i2v_revision, "flf_revision": self.flf_revision}
        return {**data, **{k: v for k, v in extra.items() if v is not None}}


def step_cache_label(plan: RenderPlan) -> str | None:
    """The step cache's setting as the cache key and the shot records hold it (None: no cache)."""
    return f"{plan.step_cache}:{plan.step_cache_threshold:g}" if plan.step_cache != "none" else None


def clip_key(ident: ModelIdentity, plan: RenderPlan, shot: PlannedShot, *, seed: int | None = None,
             image_sha256: str | None = None, end_sha256: str | None = None) -> str:  # fmt: skip
    """The cache key of one take of a planned shot (``seed``: the take's; default the shot's;
    ``image_sha256``: its start frame's digest; ``end_sha256``: its end frame's)."""
    chained = image_sha256 is not None and end_sha256 is None
    return shot_key(
        model_id=ident.id, model_revision=ident.revision, prompt=shot.prompt, negative=shot.negative,
        seed=shot.seed if seed is None else seed, width=plan.gen_width, height=plan.gen_height,
        num_frames=shot.num_frames, steps=plan.steps_of(shot), guidance=plan.guidance_of(shot),
        max_sequence_length=plan.max_sequence_length, image_sha256=image_sha256,
        i2v_revision=ident.i2v_revision if chained else None, step_cache=step_cache_label(plan),
        colour_anchor=anchor_root(plan, shot.index) is not None if chained else None,
        loras=[(u.sha256, u.weight) for u in shot.loras], references=[u.sha256 for u in shot.model_references],
        end_sha256=end_sha256, flf_revision=ident.flf_revision if end_sha256 is not None else None,
        window_frames=plan.window_frames if 0 < plan.window_frames < shot.num_frames else None,
    )  # fmt: skip


def render_key(plan: RenderPlan, keys: list[str | None], audio_sha256: str) -> str:
    """Everything that decides the output file's bytes, hashed: the edit and encoder fields of the
    plan, the clips' keys, the audio, the assembly's version."""
    edit = {name: getattr(plan, name) for name in OUTPUT_FIELDS}
    slots = [{name: getattr(s, name) for name in SLOT_FIELDS} for s in plan.shots]
    payload = json.dumps(
        {"edit": edit, "slots": slots, "clips": keys, "audio": audio_sha256, "assembly": ASSEMBLY_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()
