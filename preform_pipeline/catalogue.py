"""Machine types, build volumes and materials.

The catalogue shipped here is what the simulator serves from ``/list-materials/`` and what
recipe validation falls back to when no server is reachable. A real PreFormServer's
``/list-materials/`` answer is authoritative and can be turned into a :class:`Catalogue` with
:meth:`Catalogue.from_list_materials`, so validation checks against whatever the user's
installed PreForm actually offers.

Build volumes are the published printable volumes (x, y, z in mm). Material codes follow the
Formlabs pattern (``FLGPGR05`` = Grey V5); the shipped list is a representative subset, not the
full PreForm catalogue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "ADAPTIVE",
    "DEFAULT_CATALOGUE",
    "Catalogue",
    "LayerThickness",
    "MachineType",
    "Material",
    "MaterialSetting",
    "Technology",
]

ADAPTIVE: Final = "ADAPTIVE"

Technology = Literal["SLA", "SLS"]
LayerThickness = float | Literal["ADAPTIVE"]


@dataclass(frozen=True)
class MaterialSetting:
    """One selectable print setting of a material (a layer thickness, or adaptive layers)."""

    label: str
    layer_thickness_mm: LayerThickness
    print_setting: str = "DEFAULT"


@dataclass(frozen=True)
class Material:
    """A resin or powder and the settings it can be printed with on one machine type."""

    code: str
    label: str
    description: str
    settings: tuple[MaterialSetting, ...]
    #: Cured resin / sintered part density, g/ml, for mass estimates.
    density_g_ml: float = 1.15
    dental: bool = False

    def supports_thickness(self, thickness: LayerThickness) -> bool:
        for setting in self.settings:
            wanted = setting.layer_thickness_mm
            if wanted == ADAPTIVE or thickness == ADAPTIVE:
                if wanted == thickness:
                    return True
            elif not isinstance(thickness, str) and abs(float(wanted) - float(thickness)) < 1e-6:
                return True
        return False

    @property
    def thicknesses(self) -> tuple[LayerThickness, ...]:
        return tuple(s.layer_thickness_mm for s in self.settings)


@dataclass(frozen=True)
class MachineType:
    """A printer family as the Local API names it (``FORM-4-0``) with its build volume."""

    label: str
    type_ids: tuple[str, ...]
    product_names: tuple[str, ...]
    build_volume_mm: tuple[float, float, float]
    technology: Technology
    materials: tuple[Material, ...]

    @property
    def type_id(self) -> str:
        """The canonical machine type id (the first one)."""
        return self.type_ids[0]

    def material(self, code: str) -> Material | None:
        for material in self.materials:
            if material.code == code:
                return material
        return None


def _settings(*thicknesses: LayerThickness) -> tuple[MaterialSetting, ...]:
    out = []
    for t in thicknesses:
        label = "Adaptive" if t == ADAPTIVE else f"{float(t):.3f}mm"
        out.append(MaterialSetting(label=label, layer_thickness_mm=t))
    return tuple(out)


_FORM4_STANDARD = _settings(0.025, 0.05, 0.1, 0.2, ADAPTIVE)
_FORM4_FINE = _settings(0.025, 0.05, 0.1)
_FORM4_DENTAL = _settings(0.05, 0.1)
_FORM3_STANDARD = _settings(0.025, 0.05, 0.1, ADAPTIVE)
_FORM3_FINE = _settings(0.05, 0.1)
_FUSE = _settings(0.11)


def _form4_materials(dental: bool) -> tuple[Material, ...]:
    general = (
        Material("FLGPGR05", "Grey V5", "General purpose grey resin", _FORM4_STANDARD),
        Material("FLGPBK05", "Black V5", "General purpose black resin", _FORM4_STANDARD),
        Material("FLGPWH05", "White V5", "General purpose white resin", _FORM4_STANDARD),
        Material("FLGPCL05", "Clear V5", "General purpose clear resin", _FORM4_FINE),
        Material("FLTO2K02", "Tough 2000 V2", "Stiff, strong engineering resin", _FORM4_FINE),
        Material("FLDUCL22", "Durable V2", "Pliable, impact-resistant resin", _FORM4_FINE),
        Material("FLFRGR01", "Fast Model", "Draft resin for fast prototypes", _settings(0.2)),
        # Formlabs' own Local API examples create Form 4 scenes in Rigid 10K.
        Material("FLRG1011", "Rigid 10K V1.1", "Glass-filled, very stiff engineering resin",
                 _FORM4_FINE),
    )
    dental_materials = (
        Material(
            "FLPMBE01", "Precision Model", "Dental model resin for crown and bridge models",
            _FORM4_DENTAL, density_g_ml=1.17, dental=True,
        ),
        Material(
            "FLDMGR01", "Dental Model V3", "Dental model resin for orthodontic and study models",
            _FORM4_DENTAL, density_g_ml=1.17, dental=True,
        ),
        Material(
            "FLSGAM01", "Surgical Guide", "Biocompatible resin for surgical guides",
            _FORM4_DENTAL, density_g_ml=1.18, dental=True,
        ),
        Material(
            "FLDLCL02", "Dental LT Clear V2", "Biocompatible resin for splints and occlusal guards",
            _FORM4_DENTAL, density_g_ml=1.18, dental=True,
        ),
    )
    return general + dental_materials if dental else general + dental_materials[:2]


def _form3_materials() -> tuple[Material, ...]:
    return (
        Material("FLGPGR04", "Grey V4", "General purpose grey resin", _FORM3_STANDARD),
        Material("FLGPBK04", "Black V4", "General purpose black resin", _FORM3_STANDARD),
        Material("FLGPCL04", "Clear V4", "General purpose clear resin", _FORM3_FINE),
        Material("FLTO2K01", "Tough 2000", "Stiff, strong engineering resin", _FORM3_FINE),
        Material(
            "FLDMBE01", "Dental Model V2", "Dental model resin", _FORM3_FINE,
            density_g_ml=1.17, dental=True,
        ),
    )


def _fuse_materials() -> tuple[Material, ...]:
    return (
        Material("FLP12G01", "Nylon 12 Powder", "Strong general purpose powder", _FUSE, 1.01),
        Material("FLP11B01", "Nylon 11 Powder", "Ductile, impact-resistant powder", _FUSE, 1.04),
        Material("FLPGF101", "Nylon 12 GF Powder", "Glass-filled, stiff powder", _FUSE, 1.30),
        Material("FLTPU901", "TPU 90A Powder", "Flexible elastomer powder", _FUSE, 1.10),
    )


_MACHINES: tuple[MachineType, ...] = (
    MachineType(
        "Form 4", ("FORM-4-0",), ("Form 4",), (200.0, 125.0, 210.0), "SLA",
        _form4_materials(dental=False),
    ),
    MachineType(
        "Form 4B", ("FORM-4B-0",), ("Form 4B",), (200.0, 125.0, 210.0), "SLA",
        _form4_materials(dental=True),
    ),
    MachineType(
        "Form 4L", ("FORM-4L-0",), ("Form 4L",), (353.0, 196.0, 350.0), "SLA",
        _form4_materials(dental=False),
    ),
    MachineType(
        "Form 3+", ("FORM-3-1", "FORM-3-0"), ("Form 3+", "Form 3"), (145.0, 145.0, 185.0), "SLA",
        _form3_materials(),
    ),
    MachineType(
        "Form 3L", ("FORM-3L-0",), ("Form 3L",), (335.0, 200.0, 300.0), "SLA",
        _form3_materials(),
    ),
    MachineType(
        "Fuse 1+ 30W", ("FS30-1-0",), ("Fuse 1+ 30W",), (165.0, 165.0, 300.0), "SLS",
        _fuse_materials(),
    ),
)


@dataclass(frozen=True)
class Catalogue:
    """The machine types and materials a validation or simulation works against."""

    machines: tuple[MachineType, ...]
    #: Where the data came from, for messages ("shipped catalogue", "server http://...").
    source: str = "shipped catalogue"

    def machine(self, type_id: str) -> MachineType | None:
        for machine in self.machines:
            if type_id in machine.type_ids:
                return machine
        return None

    @property
    def type_ids(self) -> tuple[str, ...]:
        return tuple(tid for m in self.machines for tid in m.type_ids)

    def to_list_materials(self) -> dict[str, Any]:
        """The ``/list-materials/`` response body for this catalogue."""
        printer_types = []
        for machine in self.machines:
            materials = []
            for material in machine.materials:
                settings = [
                    {
                        "label": s.label,
                        "scene_settings": {
                            "machine_type": machine.type_id,
                            "material_code": material.code,
                            "print_setting": s.print_setting,
                            "layer_thickness_mm": s.layer_thickness_mm,
                        },
                    }
                    for s in material.settings
                ]
                materials.append(
                    {
                        "label": material.label,
                        "description": material.description,
                        "material_settings": settings,
                    }
                )
            printer_types.append(
                {
                    "label": machine.label,
                    "build_volume_dimensions_mm": list(machine.build_volume_mm),
                    "supported_machine_type_ids": list(machine.type_ids),
                    "supported_product_names": list(machine.product_names),
                    "materials": materials,
                }
            )
        return {"printer_types": printer_types}

    @classmethod
    def from_list_materials(cls, body: Mapping[str, Any], *, source: str) -> Catalogue:
        """Build a catalogue from a server's ``/list-materials/`` answer.

        Technology is not in the answer; SLS is recognised by the Fuse machine type prefix
        (``FS``), which is how Formlabs names its SLS machine types.
        """
        machines = []
        for ptype in body.get("printer_types", []):
            type_ids = tuple(ptype.get("supported_machine_type_ids") or ())
            if not type_ids:
                continue
            materials: dict[str, Material] = {}
            for mat in ptype.get("materials", []):
                settings: list[MaterialSetting] = []
                code = ""
                for ms in mat.get("material_settings", []):
                    scene = ms.get("scene_settings") or {}
                    code = scene.get("material_code", code)
                    settings.append(
                        MaterialSetting(
                            label=ms.get("label", ""),
                            layer_thickness_mm=scene.get("layer_thickness_mm", 0.1),
                            print_setting=scene.get("print_setting", "DEFAULT"),
                        )
                    )
                if code:
                    materials[code] = Material(
                        code, mat.get("label", code), mat.get("description", ""), tuple(settings)
                    )
            dims = ptype.get("build_volume_dimensions_mm") or [0.0, 0.0, 0.0]
            machines.append(
                MachineType(
                    label=ptype.get("label", type_ids[0]),
                    type_ids=type_ids,
                    product_names=tuple(ptype.get("supported_product_names") or ()),
                    build_volume_mm=(float(dims[0]), float(dims[1]), float(dims[2])),
                    technology="SLS" if type_ids[0].startswith("FS") else "SLA",
                    materials=tuple(materials.values()),
                )
            )
        return cls(machines=tuple(machines), source=source)

    def with_machines(self, machines: Iterable[MachineType]) -> Catalogue:
        return Catalogue(machines=tuple(machines), source=self.source)


DEFAULT_CATALOGUE = Catalogue(machines=_MACHINES)
